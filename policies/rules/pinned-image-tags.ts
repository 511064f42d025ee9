import { ResourceValidationPolicy } from "@pulumi/policy";
import { FLOATING_TAGS, unpinnedReason } from "../../catalog/images";
import { imageResourceRules, WorkloadImage, workloadImages, workloadRule } from "../lib/rule";

export interface PinnedConfig {
    /** Tags that move and therefore do not pin a version. */
    floatingTags: string[];
}

// The list the stack config and the components refuse too (catalog/images.ts): a per-stack
// policy config that changed it would let the three disagree (tests/policies/pack.test.ts).
const defaults: PinnedConfig = { floatingTags: [...FLOATING_TAGS] };

/** What is wrong with `ref` run at `where`: not pinned. */
function unpinned(where: string, ref: string, cfg: PinnedConfig): string[] {
    const reason = unpinnedReason(ref, cfg.floatingTags);
    return reason ? [`${where} "${ref}" ${reason}`] : [];
}

/** Where a workload runs an image, as messages name it. */
const where = (i: WorkloadImage) => (i.container ? `container "${i.container.name}"` : i.volume !== undefined ? `image volume "${i.volume}"` : "image");

const FIX = "pin a version tag (postgres:16.4) or a digest (name@sha256:...).";

export const pinnedImageTags: ResourceValidationPolicy = {
    name: "pinned-image-tags",
    description:
        "Images are pinned: an explicit version tag or a sha256 digest, never `latest` or a tag-less reference, " +
        "so a deployment is reproducible and a registry change cannot swap the code. Checked on workloads, RemoteImage, " +
        "RegistryImage and Image names, docker-build Image tags and Index tag and sources, and the images a build pulls " +
        "(build arguments named IMAGE or *_IMAGE, and its Dockerfile's FROM, COPY --from and RUN --mount=from).",
    severity: "medium",
    configSchema: {
        properties: {
            floatingTags: { type: "array", items: { type: "string" }, default: defaults.floatingTags },
        },
    },
    validateResource: [
        workloadRule(defaults, (w, cfg) => workloadImages(w).flatMap((i) => unpinned(where(i), i.ref, cfg)), (w, p) => `${w.label}: ${p}; ${FIX}`),
        ...imageResourceRules(defaults, unpinned, (who, p) => `${who}: ${p}; ${FIX}`),
    ],
};
