import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { plain, str } from "../lib/values";

/**
 * A `helm.sh/v3` Release hands its chart to Helm inside the provider: the Deployments, RBAC and
 * Services it installs never reach the engine as resources, so every other policy of this pack
 * would pass a chart that runs privileged pods or binds cluster-admin. `helm.sh/v4` Chart renders
 * the same chart into resources of their own, which the pack checks one by one.
 */
export const noHelmReleases: ResourceValidationPolicy = {
    name: "no-helm-releases",
    description:
        "Kubernetes objects reach the cluster as resources the pack checks: no kubernetes:helm.sh/v3:Release, whose chart's " +
        "objects Helm installs where no policy sees them; deploy a chart with kubernetes:helm.sh/v4:Chart, which registers " +
        "every object it renders as a resource of its own.",
    severity: "high",
    validateResource: validateResourceOfType(k8s.helm.v3.Release, (props, args, reportViolation) => {
        const chart = str(plain(props as Record<string, any>).chart);
        reportViolation(`Release "${args.name}"${chart === undefined ? "" : ` (chart "${chart}")`} installs objects no policy checks ` +
            "(Helm applies them inside the provider); deploy the chart with kubernetes:helm.sh/v4:Chart, whose objects the pack checks " +
            "like any other.");
    }),
};
