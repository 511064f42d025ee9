/**
 * The image resources that build an image, one view for both providers that can: `@pulumi/docker`'s
 * `Image` (`build.{context, dockerfile, args}`) and `@pulumi/docker-build`'s `Image` (`context.location`,
 * `context.named`, `dockerfile.{location, inline}`, `buildArgs`), so the image policies check the
 * images a build pulls the same way whichever one the program uses.
 */
import * as path from "node:path";
import { dockerfileBases, dockerfileOf, type ImageBuild, type UnreadableDockerfile } from "./dockerfile";
import { isRecord, isUnknown, str, UNKNOWN } from "./values";

/** `@pulumi/docker-build`'s image (the pack does not depend on that package: its type token is enough). */
export const DOCKER_BUILD_IMAGE = "docker-build:index:Image";
/** `@pulumi/docker-build`'s index (manifest list): joins existing images (`sources`) under one `tag`. */
export const DOCKER_BUILD_INDEX = "docker-build:index:Index";
/** `@pulumi/docker`'s registry image: pushes a local image under its `name`. */
export const DOCKER_REGISTRY_IMAGE = "docker:index/registryImage:RegistryImage";

/** An image resource's build, and how its fields are spelled for the fix a message gives. */
export interface ImageResourceBuild extends ImageBuild {
    /** What to set so the policies can read the Dockerfile. */
    fix: string;
}

/** `value[key]`, UNKNOWN when `value` itself is unknown (a whole object computed during preview). */
function field(value: unknown, key: string): unknown {
    if (isUnknown(value)) return UNKNOWN;
    return isRecord(value) ? value[key] : undefined;
}

/** A `@pulumi/docker` `Image`'s build; undefined when it builds nothing here (no `build`). */
export function dockerImageBuild(props: Record<string, any>): ImageResourceBuild | undefined {
    if (!isRecord(props.build)) return undefined;
    const { dockerfile, context, args } = props.build;
    return {
        dockerfile, context, args,
        fix: "give build.dockerfile (or build.context) as an absolute path to a Dockerfile on the machine running the preview.",
    };
}

/**
 * A `@pulumi/docker` `RemoteImage`'s optional build: `build.dockerfile` is relative to `build.context`
 * (default "Dockerfile"), its arguments are `build.buildArgs`.
 */
export function remoteImageBuild(props: Record<string, any>): ImageResourceBuild | undefined {
    if (!isRecord(props.build)) return undefined;
    const { dockerfile, context, buildArgs } = props.build;
    const file = str(dockerfile);
    const dir = str(context);
    const located = file !== undefined && dir !== undefined && !path.isAbsolute(file) && path.isAbsolute(dir) ? path.join(dir, file) : dockerfile;
    return {
        dockerfile: located, context, args: buildArgs,
        fix: "give build.context as an absolute path (build.dockerfile is read inside it) on the machine running the preview.",
    };
}

/** A `@pulumi/docker-build` `Image`'s build (it always builds). */
export function dockerBuildImageBuild(props: Record<string, any>): ImageResourceBuild {
    const named = field(props.context, "named");
    return {
        dockerfile: field(props.dockerfile, "location"),
        inline: field(props.dockerfile, "inline"),
        inlineField: "dockerfile.inline",
        context: field(props.context, "location"),
        args: props.buildArgs,
        named: isRecord(named) ? Object.fromEntries(Object.entries(named).map(([name, c]) => [name, field(c, "location")])) : named,
        fix: "give dockerfile.location (or context.location) as an absolute path to a Dockerfile on the machine running the preview, " +
            "or the Dockerfile itself as dockerfile.inline.",
    };
}

/**
 * Does a build argument name an image? This repo's convention: every `FROM ${X}` of a Dockerfile the
 * program builds (and of images/*) takes its base from an argument named `IMAGE` or `<WHAT>_IMAGE`
 * (NODE_IMAGE, SERVICES_IMAGE, BASE_IMAGE; case-insensitive), so the policies see a build's base
 * images where the resource's inputs hold them. Other arguments (versions, SERVICES_IMAGE_ID, a
 * content id recorded in a label) are not image references and are not checked.
 */
export function isImageBuildArg(name: string): boolean {
    return /(^|_)IMAGE$/i.test(name);
}

/**
 * The base images a build is given: its build arguments that name an image, as `[argument,
 * reference]`; arguments unknown during preview, and empty ones (no image: the build fails at FROM),
 * left out.
 */
export function buildArgImages(build: ImageBuild): Array<[string, string]> {
    if (!isRecord(build.args)) return [];
    return Object.entries(build.args)
        .filter(([name]) => isImageBuildArg(name))
        .flatMap(([name, value]): Array<[string, string]> => {
            const ref = str(value);
            return ref === undefined || ref.trim() === "" ? [] : [[name, ref]];
        });
}

/**
 * The images the Dockerfile a build runs pulls (read where the policies run: `dockerfileOf`) that no
 * checked build argument holds: a literal FROM or `COPY --from`, an argument left at its `ARG`
 * default, one not named as an image, a reference that only uses arguments (`${REG}/debian:${TAG}`),
 * a named context that is an image; as `[where, reference]`. Arguments unknown during preview leave
 * out the images that use them. `unreadable`: the Dockerfile the build names and why it could not be
 * read (then no image is known).
 */
export function dockerfileImages(build: ImageBuild): { bases: Array<[string, string]>; unreadable?: UnreadableDockerfile } {
    const dockerfile = dockerfileOf(build);
    if (dockerfile === undefined) return { bases: [] };
    if ("unreadable" in dockerfile) return { bases: [], unreadable: dockerfile };
    if (build.args !== undefined && !isRecord(build.args)) return { bases: [] };
    if (build.named !== undefined && !isRecord(build.named)) return { bases: [] };
    const known = (values: Record<string, unknown> | undefined) =>
        Object.fromEntries(Object.entries(values ?? {}).map(([name, value]) => [name, str(value)]));
    const bases = dockerfileBases(dockerfile.text, known(build.args), known(build.named))
        .filter((base) => base.fromArg === undefined || !isImageBuildArg(base.fromArg))
        .map((base): [string, string] => [`${dockerfile.file} line ${base.line} (${base.written})`, base.ref]);
    return { bases };
}
