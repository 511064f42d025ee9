import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { isUnknown, str } from "../lib/values";

export interface PullNeverConfig {
    /**
     * Image reference prefixes of images loaded into the nodes by hand (never in a registry), the only
     * ones `imagePullPolicy: Never` may run. None by default: prod pulls everything from a registry.
     */
    localImagePrefixes: string[];
}

const defaults: PullNeverConfig = { localImagePrefixes: [] };

/**
 * Kubernetes containers with `imagePullPolicy: Never` whose image is not one of the locally loaded
 * ones. The kubelet then never contacts the registry: the pod starts only on a node where someone
 * pre-loaded an image of that name (ErrImageNeverPull anywhere else), and it runs whatever image the
 * node holds under that name, whoever put it there, with no check against the registry's.
 * IfNotPresent and Always are not this rule's concern; an image unknown during preview is skipped.
 */
export function pullNeverProblems(w: Workload, cfg: PullNeverConfig = defaults): string[] {
    const out: string[] = [];
    for (const c of w.containers) {
        if (str(c.container.imagePullPolicy) !== "Never") continue;
        const raw = c.container.image;
        if (isUnknown(raw)) continue;
        const image = str(raw) ?? "";
        if (image !== "" && cfg.localImagePrefixes.some((p) => p !== "" && image.startsWith(p))) continue;
        out.push(`${c.init ? "init container" : "container"} "${c.name}" runs ${image === "" ? "no image" : `the registry image ${image}`} with imagePullPolicy: Never`);
    }
    return out;
}

export const pullNeverLocalImages: ResourceValidationPolicy = {
    name: "pull-never-local-images",
    description:
        "On Kubernetes, imagePullPolicy: Never only for images loaded into the nodes by hand (localImagePrefixes): a " +
        "registry image under Never starts only where someone pre-loaded it, and runs whatever the node holds under its name.",
    severity: "medium",
    configSchema: {
        properties: {
            localImagePrefixes: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: workloadRule(defaults, pullNeverProblems, (w, p) =>
        `${w.label} ${p}: the pod starts only on a node where that image was pre-loaded, and runs whatever image the ` +
        "node holds under that name. Use IfNotPresent (or Always) for registry images; Never is for images imported into " +
        "the nodes, listed in localImagePrefixes.",
        ["kubernetes"]),
};
