/**
 * The images a Dockerfile pulls, as Docker resolves them for a given set of build arguments, so that
 * the image policies see an image that is no build argument: a literal `FROM node:latest`, a `FROM
 * ${BASE}` whose argument keeps its `ARG` default, `FROM ${REG}/debian:${TAG:-stable}`, and the images
 * a build copies or mounts files from without building on them (`COPY --from=node:latest`, `RUN
 * --mount=from=...`), which run in the build and end up in the image as much as a base does.
 * Parsing (continuations, the escape directive, comments, flags, stage names, `ARG` defaults) is
 * dockerfile-ast's, the parser of the VS Code Docker extension; substitution is done here because the
 * parser resolves a variable to its `ARG` default only, not to the build arguments given.
 */
import * as fs from "fs";
import * as path from "path";
import { DockerfileParser, From, ModifiableInstruction } from "dockerfile-ast";
import { isUnknown, str } from "./values";

export interface DockerfileBase {
    /** 1-based line of the instruction. */
    line: number;
    /** The instruction as far as it names the image (`FROM ${NODE_IMAGE}`, `COPY --from=node:latest`). */
    written: string;
    /** The image Docker pulls, variables substituted. */
    ref: string;
    /** The build argument the whole image is (`FROM ${X}` with X given), if so. */
    fromArg?: string;
}

/** `$X`, `${X}`, `${X:-word}`, `${X:+word}`, and an escaped `$` (escape character before it) left as written. */
const VARIABLE = /(\\?)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Each image `text` pulls (a FROM that is not `scratch` nor an earlier stage; a `COPY --from` or
 * `RUN --mount=from=` that names no stage), resolved with the given build arguments: a global `ARG`
 * (before the first FROM) takes the given value, else its default; an undeclared variable is empty,
 * as in Docker. `given` maps an argument to its value, or to undefined while it is unknown (during
 * preview): an image that uses an unknown one is left out, as is one that resolves to nothing (the
 * build fails there). `named`: the build's named contexts (docker-build's `context.named`), which
 * replace the image of their name: a `docker-image://` one is the image pulled instead, any other (a
 * directory, a URL, an OCI layout) pulls nothing, an unknown one (undefined) is left out.
 */
export function dockerfileBases(text: string, given: Record<string, string | undefined>, named: Record<string, string | undefined> = {}): DockerfileBase[] {
    const doc = DockerfileParser.parse(text);
    const declared = new Map<string, string | undefined>();
    for (const arg of doc.getInitialARGs()) {
        const p = arg.getProperty();
        const name = p?.getName();
        if (name) declared.set(name, p?.getValue() ?? undefined);
    }
    const stages = new Set<string>();
    const bases: DockerfileBase[] = [];
    const pulled = (written: string, image: string, line: number) => {
        if (stages.has(image.toLowerCase()) || /^\d+$/.test(image) || image.toLowerCase() === "scratch") return;
        const resolved = substitute(image, declared, given);
        if (resolved === undefined || resolved === "") return;
        let ref = resolved;
        // Own entries only: a FROM or argument named `constructor` is no named context or argument.
        if (Object.hasOwn(named, resolved)) {
            const location = named[resolved];
            if (location === undefined || !location.startsWith(DOCKER_IMAGE_CONTEXT)) return;
            ref = location.slice(DOCKER_IMAGE_CONTEXT.length);
            written = `${written}, named context ${resolved}=${location}`;
        }
        const whole = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(image);
        const fromArg = whole && declared.has(whole[1]) && given[whole[1]] !== undefined && ref === resolved ? whole[1] : undefined;
        bases.push({ line, written, ref, fromArg });
    };
    for (const instruction of doc.getInstructions()) {
        const line = instruction.getRange().start.line + 1;
        if (instruction instanceof From) {
            const image = instruction.getImage();
            if (image) pulled(`FROM ${image}`, image, line);
            const stage = instruction.getBuildStage();
            if (stage) stages.add(stage.toLowerCase());
        } else if (instruction instanceof ModifiableInstruction) {
            const keyword = instruction.getKeyword();
            for (const flag of instruction.getFlags()) {
                const from = flag.getName() === "from" && keyword === "COPY" ? flag.getValue()
                    : flag.getName() === "mount" && keyword === "RUN" ? flag.getOption("from")?.getValue() : undefined;
                if (from) pulled(`${keyword} --${flag.getName()}=${flag.getValue()}`, from, line);
            }
        }
    }
    return bases;
}

/** A named context that is an image: the image it names follows. */
const DOCKER_IMAGE_CONTEXT = "docker-image://";

/** `written` with its variables substituted; undefined when one is unknown during preview. */
function substitute(written: string, declared: Map<string, string | undefined>, given: Record<string, string | undefined>): string | undefined {
    let unknown = false;
    const valueOf = (name: string): string => {
        if (!declared.has(name)) return "";
        if (Object.hasOwn(given, name)) {
            const v = given[name];
            if (v === undefined) unknown = true;
            return v ?? "";
        }
        return declared.get(name) ?? "";
    };
    const ref = written.replace(VARIABLE, (whole, escaped: string, braced?: string, op?: string, word?: string, bare?: string) => {
        if (escaped) return whole.slice(1);
        const value = valueOf((braced ?? bare)!);
        if (op === "-") return value === "" ? word! : value;
        if (op === "+") return value === "" ? "" : word!;
        return value;
    }).trim();
    return unknown ? undefined : ref;
}

/** A Dockerfile the policies could not read (its base images then go unchecked): its path as given, and why. */
export type UnreadableDockerfile = { unreadable: string; why: string };
/** A Dockerfile the policies read, or why they could not. */
export type DockerfileRead = { file: string; text: string } | UnreadableDockerfile;

/**
 * What an image resource builds, whichever provider declares it (`@pulumi/docker`'s `Image.build`,
 * `@pulumi/docker-build`'s `Image`), as the engine hands it over (UNKNOWN where not known yet).
 */
export interface ImageBuild {
    /** The Dockerfile's path as given; undefined: `<context>/Dockerfile`. */
    dockerfile: unknown;
    /** The Dockerfile's text, given in the resource instead of a path (docker-build's `dockerfile.inline`). */
    inline?: unknown;
    /** The build context's path or URL; undefined: ".", as in both providers. */
    context: unknown;
    /** The build arguments, by name. */
    args: unknown;
    /** Named build contexts by name, each its location (docker-build's `context.named`); UNKNOWN or undefined where not known. */
    named?: unknown;
    /** How the inline Dockerfile is named in messages. */
    inlineField?: string;
}

/** A remote build context (Git, HTTP(S)): a Dockerfile inside it is not on this machine. */
const REMOTE_CONTEXT = /^([a-z][a-z0-9+.-]*:\/\/|git@)/i;

/**
 * The Dockerfile an image build runs, read from the machine running the policies: the one given
 * inline, else its path, else `<context>/Dockerfile`. Undefined when the text or path is unknown
 * during preview. A path that is not absolute is not read but reported unreadable: the policy pack
 * runs in a directory of its own, so it would name another file (this repo's program passes absolute
 * paths), and a build whose base images cannot be seen must not pass as one whose images were checked.
 */
export function dockerfileOf(build: ImageBuild): DockerfileRead | undefined {
    const { dockerfile, inline, context } = build;
    if (isUnknown(inline)) return undefined;
    const text = str(inline);
    if (text !== undefined) return { file: build.inlineField ?? "inline Dockerfile", text };
    if (isUnknown(dockerfile) || isUnknown(context)) return undefined;
    const file = str(dockerfile) ?? path.join(str(context) ?? ".", "Dockerfile");
    if (str(dockerfile) === undefined && REMOTE_CONTEXT.test(str(context) ?? "")) return { unreadable: str(context)!, why: "it is inside that remote build context, not on this machine" };
    const read = readProgramFile(file);
    return "why" in read ? { unreadable: file, why: read.why } : { file, text: read.text };
}

/**
 * A file the program names by path (a Dockerfile, an upload's `source`), read where the pack runs:
 * only an absolute path names the same file here, since the policies run in the pack's directory.
 * Its text, or why it cannot be read.
 */
export function readProgramFile(file: string): { text: string } | { why: string } {
    if (!path.isAbsolute(file)) return { why: "not an absolute path, and the policies run in the policy pack's directory, not the program's" };
    try {
        return { text: fs.readFileSync(file, "utf8") };
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return { why: code === "ENOENT" ? "no such file" : `not readable (${code ?? "error"})` };
    }
}
