/**
 * Container image references (pure): how a reference is parsed, and the one definition of "pinned".
 *
 * The stack config (stacks/config.ts: `trading:<datastore>Image`, `trading:servicesImageTag`), the
 * components (components/data, components/services.ts) and the policy pack (`pinned-image-tags`,
 * `allowed-image-registries`, `edge-tls-only`) all judge images here, so a reference the config
 * accepts is one the pack accepts. It lives in catalog/ because that is the module every package
 * compiles (the pack is loaded by the Pulumi CLI from policies/, with its own package).
 */

/**
 * Tags that move, so they pin nothing: the image behind them changes when the vendor pushes. The
 * pack's `pinned-image-tags` takes this list as its default `floatingTags`.
 */
export const FLOATING_TAGS: readonly string[] = ["latest", "stable", "edge", "nightly", "main", "master", "mainline", "lts", "head", "alpine"];

export interface ImageRef {
  /** Repository without tag or digest, as written (registry host included when given). */
  repository: string;
  /** Last path segment of the repository ("postgres" for "docker.io/library/postgres"). */
  basename: string;
  tag?: string;
  digest?: string;
  /** A bare image ID ("sha256:<64 hex>"): pinned by content. */
  isImageId: boolean;
}

const SHA256 = /^sha256:[0-9a-f]{64}$/i;

export function parseImageRef(ref: string): ImageRef {
  const trimmed = ref.trim();
  if (SHA256.test(trimmed)) {
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

/** Is `tag` one of `floatingTags` (case-insensitive: registries treat `Latest` as another tag, people do not)? */
export function isFloatingTag(tag: string, floatingTags: readonly string[] = FLOATING_TAGS): boolean {
  const lower = tag.toLowerCase();
  return floatingTags.some((t) => t.toLowerCase() === lower);
}

/** Docker's tag syntax: up to 128 characters of [A-Za-z0-9_.-], not starting with "." or "-". */
const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * May an image the program builds be pushed and run under `tag`? A tag Docker accepts, and not a
 * floating one: the stack config (`servicesImageTag`) and the image components ask the same.
 */
export function isPinnedBuildTag(tag: string): boolean {
  return DOCKER_TAG.test(tag) && !isFloatingTag(tag);
}

/**
 * Why an image reference is not pinned, or undefined when it is: pinned means a sha256 digest (with
 * or without a tag), a bare image ID, or a tag that is not a floating one. A tag-less reference is
 * `latest` to Docker.
 */
export function unpinnedReason(ref: string, floatingTags: readonly string[] = FLOATING_TAGS): string | undefined {
  const parsed = parseImageRef(ref);
  if (parsed.isImageId) return undefined;
  if (parsed.digest !== undefined) {
    return SHA256.test(parsed.digest) ? undefined : `has a malformed digest "${parsed.digest}"`;
  }
  if (parsed.tag === undefined) return "has no tag (Docker resolves it to \"latest\")";
  if (isFloatingTag(parsed.tag, floatingTags)) return `uses the floating tag "${parsed.tag}"`;
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
