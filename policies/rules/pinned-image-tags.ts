import * as docker from "@pulumi/docker";
import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { unpinnedReason } from "../lib/images";
import { Workload, workloadRule } from "../lib/rule";
import { plain, str } from "../lib/values";
import { describe } from "../lib/workloads";

export interface PinnedConfig {
    /** Tags that move and therefore do not pin a version. */
    floatingTags: string[];
}

const defaults: PinnedConfig = { floatingTags: ["latest", "stable", "edge", "nightly", "main", "master", "mainline", "lts", "head", "alpine"] };

/** [where, image reference] pairs of a workload. */
export function imageRefs(w: Workload): Array<[string, string]> {
    const refs: Array<[string, string | undefined]> = w.target === "docker"
        ? [["image", str(w.props.image)]]
        : w.containers.map((c) => [`container "${c.name}"`, str(c.container.image)]);
    return refs.filter((r): r is [string, string] => r[1] !== undefined);
}

function unpinned(refs: Array<[string, string | undefined]>, cfg: PinnedConfig): string[] {
    return refs.flatMap(([where, ref]) => {
        const reason = ref === undefined ? undefined : unpinnedReason(ref, cfg.floatingTags);
        return reason ? [`${where} "${ref}" ${reason}`] : [];
    });
}

const FIX = "pin a version tag (postgres:16.4) or a digest (name@sha256:...).";

/** An image resource (`RemoteImage.name`, `Image.imageName`) checked like a container's image. */
function imageResource(field: "name" | "imageName") {
    return (props: object, args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        const cfg = readConfig(args, defaults);
        for (const p of unpinned([[field, str(plain(props as Record<string, any>)[field])]], cfg)) {
            reportViolation(`${describe(args.type, args.name)}: ${p}; ${FIX}`);
        }
    };
}

export const pinnedImageTags: ResourceValidationPolicy = {
    name: "pinned-image-tags",
    description:
        "Images are pinned: an explicit version tag or a sha256 digest, never `latest` or a tag-less reference, " +
        "so a deployment is reproducible and a registry change cannot swap the code.",
    severity: "medium",
    configSchema: {
        properties: {
            floatingTags: { type: "array", items: { type: "string" }, default: defaults.floatingTags },
        },
    },
    validateResource: [
        workloadRule(defaults, (w, cfg) => unpinned(imageRefs(w), cfg), (w, p) => `${w.label}: ${p}; ${FIX}`),
        validateResourceOfType(docker.RemoteImage, imageResource("name")),
        validateResourceOfType(docker.Image, imageResource("imageName")),
    ],
};
