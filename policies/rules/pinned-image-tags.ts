import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { unpinnedReason } from "../lib/images";
import { str, unwrap } from "../lib/values";
import {
    describe, DOCKER_CONTAINER, DOCKER_IMAGE, DOCKER_REMOTE_IMAGE, isK8sWorkload, podContainers, podTemplate,
} from "../lib/workloads";

export interface PinnedConfig {
    /** Tags that move and therefore do not pin a version. */
    floatingTags: string[];
}

const defaults: PinnedConfig = { floatingTags: ["latest", "stable", "edge", "nightly", "main", "master", "mainline", "lts", "head", "alpine"] };

/** [where, image reference] pairs of a resource. */
export function imageRefs(type: string, props: Record<string, any>): Array<[string, string]> {
    const refs: Array<[string, string | undefined]> = [];
    if (type === DOCKER_CONTAINER) refs.push(["image", str(props.image)]);
    else if (type === DOCKER_REMOTE_IMAGE) refs.push(["name", str(props.name)]);
    else if (type === DOCKER_IMAGE) refs.push(["imageName", str(props.imageName)]);
    else if (isK8sWorkload(type)) {
        const tmpl = podTemplate(type, props);
        for (const c of tmpl ? podContainers(tmpl.spec) : []) refs.push([`container "${c.name}"`, str(c.container.image)]);
    }
    return refs.filter((r): r is [string, string] => r[1] !== undefined);
}

export function unpinnedImages(type: string, props: Record<string, any>, cfg: PinnedConfig = defaults): string[] {
    return imageRefs(type, props).flatMap(([where, ref]) => {
        const reason = unpinnedReason(ref, cfg.floatingTags);
        return reason ? [`${where} "${ref}" ${reason}`] : [];
    });
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
    validateResource: (args, reportViolation) => {
        if (![DOCKER_CONTAINER, DOCKER_REMOTE_IMAGE, DOCKER_IMAGE].includes(args.type) && !isK8sWorkload(args.type)) {
            args.notApplicable("only images and containers");
        }
        for (const p of unpinnedImages(args.type, unwrap(args.props), readConfig(args, defaults))) {
            reportViolation(`${describe(args.type, args.name)}: ${p}; pin a version tag (postgres:16.4) or a digest (name@sha256:...).`);
        }
    },
};
