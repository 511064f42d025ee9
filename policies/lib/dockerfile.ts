/**
 * The base images a Dockerfile builds FROM, as Docker resolves them for a given set of build
 * arguments, so that the image policies see a base that is no build argument: a literal `FROM
 * node:latest`, a `FROM ${BASE}` whose argument keeps its `ARG` default, `FROM ${REG}/debian:${TAG:-stable}`.
 * Parsing (continuations, the escape directive, comments, flags, stage names, `ARG` defaults) is
 * dockerfile-ast's, the parser of the VS Code Docker extension; substitution is done here because the
 * parser resolves a variable to its `ARG` default only, not to the build arguments given.
 */
import * as fs from "fs";
import * as path from "path";
import { DockerfileParser } from "dockerfile-ast";
import { isRecord, isUnknown, str } from "./values";

export interface DockerfileBase {
    /** 1-based line of the FROM instruction. */
    line: number;
    /** The image as written (`${NODE_IMAGE}`, `node:latest`). */
    written: string;
    /** The image Docker pulls, variables substituted. */
    ref: string;
    /** The build argument the whole image is (`FROM ${X}` with X given), if so. */
    fromArg?: string;
}

/** `$X`, `${X}`, `${X:-word}`, `${X:+word}`, and an escaped `$` (escape character before it) left as written. */
const VARIABLE = /(\\?)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Each FROM of `text` that pulls an image (not `scratch`, not an earlier stage), resolved with the
 * given build arguments: a global `ARG` (before the first FROM) takes the given value, else its
 * default; an undeclared variable is empty, as in Docker. `given` maps an argument to its value, or
 * to undefined while it is unknown (during preview): a FROM that uses an unknown one is left out, as
 * is one that resolves to nothing (the build fails there).
 */
export function dockerfileBases(text: string, given: Record<string, string | undefined>): DockerfileBase[] {
    const doc = DockerfileParser.parse(text);
    const declared = new Map<string, string | undefined>();
    for (const arg of doc.getInitialARGs()) {
        const p = arg.getProperty();
        const name = p?.getName();
        if (name) declared.set(name, p?.getValue() ?? undefined);
    }
    const stages = new Set<string>();
    const bases: DockerfileBase[] = [];
    for (const from of doc.getFROMs()) {
        const written = from.getImage();
        const stage = from.getBuildStage();
        const line = from.getRange().start.line + 1;
        if (written && !stages.has(written.toLowerCase()) && written.toLowerCase() !== "scratch") {
            let unknown = false;
            const valueOf = (name: string): string => {
                if (!declared.has(name)) return "";
                if (name in given) {
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
            const whole = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(written);
            const fromArg = whole && declared.has(whole[1]) && given[whole[1]] !== undefined ? whole[1] : undefined;
            if (!unknown && ref !== "") bases.push({ line, written, ref, fromArg });
        }
        if (stage) stages.add(stage.toLowerCase());
    }
    return bases;
}

/** A Dockerfile the policies could not read (its base images then go unchecked): its path as given, and why. */
export type UnreadableDockerfile = { unreadable: string; why: string };
/** A Dockerfile the policies read, or why they could not. */
export type DockerfileRead = { file: string; text: string } | UnreadableDockerfile;

/**
 * The Dockerfile a Docker `Image` resource builds, read from the machine running the policies: its
 * `build.dockerfile`, else `<build.context>/Dockerfile` (the context defaults to "." as in the
 * provider). Undefined when the image is not built here (no `build`) or the path is unknown during
 * preview. A path that is not absolute is not read but reported unreadable: the policy pack runs in a
 * directory of its own, so it would name another file (this repo's program passes absolute paths),
 * and a build whose base images cannot be seen must not pass as one whose images were checked.
 */
export function dockerfileOf(props: Record<string, any>): DockerfileRead | undefined {
    if (!isRecord(props.build)) return undefined;
    const { dockerfile, context } = props.build;
    if (isUnknown(dockerfile) || isUnknown(context)) return undefined;
    const file = str(dockerfile) ?? path.join(str(context) ?? ".", "Dockerfile");
    if (!path.isAbsolute(file)) return { unreadable: file, why: "not an absolute path, and the policies run in the policy pack's directory, not the program's" };
    try {
        return { file, text: fs.readFileSync(file, "utf8") };
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return { unreadable: file, why: code === "ENOENT" ? "no such file" : `not readable (${code ?? "error"})` };
    }
}
