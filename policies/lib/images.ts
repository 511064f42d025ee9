/** Container image reference parsing (pure). */

export interface ImageRef {
    /** Repository without registry host, e.g. "library/postgres" -> "postgres" basename. */
    repository: string;
    /** Last path segment of the repository ("postgres" for "docker.io/library/postgres"). */
    basename: string;
    tag?: string;
    digest?: string;
    /** A bare image ID ("sha256:<64 hex>"): pinned by content. */
    isImageId: boolean;
}

export function parseImageRef(ref: string): ImageRef {
    const trimmed = ref.trim();
    if (/^sha256:[0-9a-f]{64}$/i.test(trimmed)) {
        return { repository: trimmed, basename: trimmed, isImageId: true, digest: trimmed };
    }
    let rest = trimmed;
    let digest: string | undefined;
    const at = rest.indexOf("@");
    if (at >= 0) {
        digest = rest.slice(at + 1);
        rest = rest.slice(0, at);
    }
    let tag: string | undefined;
    const lastSlash = rest.lastIndexOf("/");
    const lastColon = rest.lastIndexOf(":");
    if (lastColon > lastSlash) {
        tag = rest.slice(lastColon + 1);
        rest = rest.slice(0, lastColon);
    }
    const parts = rest.split("/");
    const basename = parts[parts.length - 1];
    return { repository: rest, basename, tag: tag || undefined, digest, isImageId: false };
}

/** Why an image reference is not pinned, or undefined when it is (tag other than a floating one, or digest). */
export function unpinnedReason(ref: string, floatingTags: string[]): string | undefined {
    const parsed = parseImageRef(ref);
    if (parsed.isImageId) return undefined;
    if (parsed.digest !== undefined) {
        return /^sha256:[0-9a-f]{64}$/i.test(parsed.digest) ? undefined : `has a malformed digest "${parsed.digest}"`;
    }
    if (parsed.tag === undefined) return "has no tag (Docker resolves it to \"latest\")";
    if (floatingTags.map((t) => t.toLowerCase()).includes(parsed.tag.toLowerCase())) {
        return `uses the floating tag "${parsed.tag}"`;
    }
    return undefined;
}

/**
 * The fully qualified repository an image reference resolves to, as the Docker engine and containerd
 * resolve it (distribution/reference's ParseNormalizedNamed), without tag or digest: a first path
 * segment is a registry host only when the name has more segments and that one holds a "." or a
 * ":", is "localhost" or has upper-case letters (which repository paths cannot); otherwise the image
 * is on Docker Hub, `docker.io`, and a single-segment name is one of its official images,
 * `docker.io/library/<name>`. `index.docker.io` is Docker Hub's legacy name. Undefined for a bare
 * image ID (`sha256:<64 hex>`), which names content, not a repository.
 */
export function qualifiedRepository(ref: string): string | undefined {
    const parsed = parseImageRef(ref);
    if (parsed.isImageId) return undefined;
    const slash = parsed.repository.indexOf("/");
    const first = slash < 0 ? "" : parsed.repository.slice(0, slash);
    const hasHost = slash >= 0 && (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase());
    let host = hasHost ? first : "docker.io";
    let path = hasHost ? parsed.repository.slice(slash + 1) : parsed.repository;
    if (host === "index.docker.io") host = "docker.io";
    if (host === "docker.io" && !path.includes("/")) path = `library/${path}`;
    return `${host}/${path}`;
}

/**
 * Is `repository` (fully qualified) the registry/repository `prefix` or inside it? Compared on whole
 * path segments: `registry.example.com/ai` holds `registry.example.com/ai/x`, not
 * `registry.example.com/ai-evil/x`. A trailing "/" on the prefix is ignored; an empty prefix holds nothing.
 */
export function isUnderPrefix(repository: string, prefix: string): boolean {
    const p = prefix.trim().replace(/\/+$/, "");
    return p !== "" && (repository === p || repository.startsWith(`${p}/`));
}
