import * as docker from "@pulumi/docker";
import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { isUnderPrefix, qualifiedRepository } from "../lib/images";
import { Workload, workloadRule } from "../lib/rule";
import { plain, str } from "../lib/values";
import { describe } from "../lib/workloads";

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

/**
 * [where, image reference] pairs of a workload: a Docker container's image, or every container and
 * init container of a Kubernetes pod template. Images unknown during preview are left out.
 */
export function workloadImages(w: Workload): Array<[string, string]> {
    const refs: Array<[string, string | undefined]> = w.target === "docker"
        ? [["image", str(w.props.image)]]
        : w.containers.map((c) => [`${c.init ? "init container" : "container"} "${c.name}" image`, str(c.container.image)]);
    return refs.filter((r): r is [string, string] => r[1] !== undefined);
}

function problems(refs: Array<[string, string | undefined]>, cfg: AllowedRegistriesConfig): string[] {
    return refs.flatMap(([where, ref]) => {
        const repository = ref === undefined ? undefined : disallowedRepository(ref, cfg.allowedRegistries);
        return repository === undefined ? [] : [`${where} "${ref}" (${repository})`];
    });
}

const message = (who: string, problem: string, cfg: AllowedRegistriesConfig) =>
    `${who} ${problem} is not from an allowed registry (allowedRegistries: ${cfg.allowedRegistries.join(", ")}): ` +
    "pull it from one of those (push or mirror the image there), or, once its source is reviewed, add its registry or " +
    "repository to allowedRegistries in the stack's policy config.";

/** An image resource (`RemoteImage.name`, `Image.imageName`) checked like a container's image. */
function imageResource(field: "name" | "imageName") {
    return (props: object, args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        const cfg = readConfig(args, defaults);
        for (const p of problems([[field, str(plain(props as Record<string, any>)[field])]], cfg)) {
            reportViolation(message(describe(args.type, args.name), p, cfg));
        }
    };
}

export const allowedImageRegistries: ResourceValidationPolicy = {
    name: "allowed-image-registries",
    description:
        "Every image (Docker containers, RemoteImage and Image names; Kubernetes containers and init containers) comes from a " +
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
        workloadRule(defaults, (w, cfg) => problems(workloadImages(w), cfg), (w, p, cfg) => message(w.label, p, cfg)),
        validateResourceOfType(docker.RemoteImage, imageResource("name")),
        validateResourceOfType(docker.Image, imageResource("imageName")),
    ],
};
