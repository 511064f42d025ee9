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
/**
 * A sha256 digest as the engines take it: go-digest validates the encoded part as lowercase hex (`^[a-f0-9]{64}$`),
 * so `@sha256:<upper-case hex>` fails the pull ("invalid checksum digest format") after a preview that took it.
 */
const SHA256_LOWER = /^sha256:[0-9a-f]{64}$/;

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

/**
 * Docker's reference grammar (distribution/reference): `[domain/]path[:tag][@digest]`. The first
 * segment is a domain (DNS labels, an optional port) only when more segments follow and it holds a
 * "." or a ":", is "localhost" or has upper-case letters, as the engine splits it (qualifiedRepository);
 * each path component is lowercase alphanumerics joined by ".", "_", "__" or dashes; a tag is up to
 * 128 of [A-Za-z0-9_.-] starting with neither "." nor "-"; a digest is an algorithm and hex.
 */
const DOMAIN_LABEL = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const REFERENCE_DOMAIN = new RegExp(`^${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const REFERENCE_DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
/** The engine's limit on a repository name (domain and path). */
const NAME_MAX = 255;

/**
 * Why `ref` is not a reference Docker and Kubernetes accept as written, or undefined when it is one.
 * A bare image ID (`sha256:<64 hex>`) is none: it names content on one engine only.
 */
export function imageReferenceProblem(ref: string): string | undefined {
  if (SHA256.test(ref)) return "is a bare image ID, which names content on one engine only, not a repository";
  const at = ref.indexOf("@");
  const named = at < 0 ? ref : ref.slice(0, at);
  if (at >= 0 && !REFERENCE_DIGEST.test(ref.slice(at + 1))) return "has a malformed digest (expected @sha256:<hex>)";
  const lastSlash = named.lastIndexOf("/");
  const colon = named.indexOf(":", lastSlash + 1);
  const name = colon < 0 ? named : named.slice(0, colon);
  if (colon >= 0 && !DOCKER_TAG.test(named.slice(colon + 1))) return "has a malformed tag (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)";
  if (name.length === 0 || name.length > NAME_MAX) return `has a repository name of ${name.length} characters (1 to ${NAME_MAX})`;
  const segments = name.split("/");
  const first = segments[0];
  const hasDomain = segments.length > 1 && (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase());
  if (hasDomain && !REFERENCE_DOMAIN.test(first)) return `has a malformed registry host "${first}"`;
  const path = hasDomain ? segments.slice(1) : segments;
  if (!path.every((c) => PATH_COMPONENT.test(c))) {
    return "has a malformed repository path (lowercase letters and digits, joined by '.', '_', '__' or '-', between '/')";
  }
  return undefined;
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
    if (SHA256_LOWER.test(parsed.digest)) return undefined;
    return SHA256.test(parsed.digest) ? "has an upper-case sha256 digest, which the engines refuse: write it in lowercase" : `has a malformed digest "${parsed.digest}"`;
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
