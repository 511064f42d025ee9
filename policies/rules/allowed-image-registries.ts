import { ResourceValidationPolicy } from "@pulumi/policy";
import { isUnderPrefix, qualifiedRepository } from "../../catalog/images";
import { imageResourceRules, WorkloadImage, workloadImages, workloadRule } from "../lib/rule";

export interface AllowedRegistriesConfig {
    /**
     * Fully qualified registry or repository prefixes, host first ("registry.example.com/ai-trading",
     * "docker.io/library/postgres"), that images may come from. Empty (the default): nothing is checked.
     */
    allowedRegistries: string[];
}

const defaults: AllowedRegistriesConfig = { allowedRegistries: [] };

/**
 * The repository `ref` resolves to when it is under none of the allowed prefixes; undefined when it
 * is under one, when it is a bare image ID (content-pinned, already on the engine), when the
 * reference is empty, or when no prefix is configured (the policy is then off).
 */
export function disallowedRepository(ref: string, allowedRegistries: string[]): string | undefined {
    const allowed = allowedRegistries.filter((p) => p.trim() !== "");
    if (allowed.length === 0 || ref.trim() === "") return undefined;
    const repository = qualifiedRepository(ref);
    if (repository === undefined || allowed.some((p) => isUnderPrefix(repository, p))) return undefined;
    return repository;
}

/** What is wrong with `ref` run at `where`: not from an allowed registry. */
function disallowed(where: string, ref: string, cfg: AllowedRegistriesConfig): string[] {
    const repository = disallowedRepository(ref, cfg.allowedRegistries);
    return repository === undefined ? [] : [`${where} "${ref}" (${repository})`];
}

/** Where a workload runs an image, as messages name it. */
const where = (i: WorkloadImage) => (i.container ? `${i.container.init ? "init container" : "container"} "${i.container.name}" image` : i.volume !== undefined ? `image volume "${i.volume}"` : "image");

const message = (who: string, problem: string, cfg: AllowedRegistriesConfig) =>
    `${who} ${problem} is not from an allowed registry (allowedRegistries: ${cfg.allowedRegistries.join(", ")}): ` +
    "pull it from one of those (push or mirror the image there), or, once its source is reviewed, add its registry or " +
    "repository to allowedRegistries in the stack's policy config.";

export const allowedImageRegistries: ResourceValidationPolicy = {
    name: "allowed-image-registries",
    description:
        "Every image (Docker containers, RemoteImage, RegistryImage and Image names, docker-build Image tags and Index tag and " +
        "sources, the images a build pulls: " +
        "build arguments named IMAGE or *_IMAGE and its Dockerfile's FROM, COPY --from and RUN --mount=from; Kubernetes " +
        "containers and init containers) comes from a " +
        "registry or repository listed in allowedRegistries (matched on whole path segments, a name without a registry host " +
        "being Docker Hub's docker.io/library/<name> or docker.io/<namespace>/<name>); a bare image ID (sha256:...) is allowed. " +
        "With allowedRegistries empty (the default) the policy reports nothing.",
    severity: "high",
    configSchema: {
        properties: {
            allowedRegistries: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: [
        workloadRule(defaults, (w, cfg) => workloadImages(w).flatMap((i) => disallowed(where(i), i.ref, cfg)), (w, p, cfg) => message(w.label, p, cfg)),
        ...imageResourceRules(defaults, disallowed, message),
    ],
};
