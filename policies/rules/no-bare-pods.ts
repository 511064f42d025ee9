import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";

export const noBarePods: ResourceValidationPolicy = {
    name: "no-bare-pods",
    description:
        "No bare Pods: every pod belongs to a controller (Deployment, StatefulSet, Job, CronJob, ...), which " +
        "reschedules it after a node failure and rolls it out safely.",
    severity: "low",
    validateResource: validateResourceOfType(k8s.core.v1.Pod, (_props, args, reportViolation) => {
        reportViolation(`Pod "${args.name}" is a bare Pod: nothing recreates it when its node fails; declare a Deployment ` +
            "(long-running) or a Job (run once) with this pod as its template.");
    }),
};
