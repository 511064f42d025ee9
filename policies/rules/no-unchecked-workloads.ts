import { ResourceValidationPolicy } from "@pulumi/policy";
import { plain, str } from "../lib/values";
import { describe } from "../lib/workloads";

/**
 * Resources that run containers the pack's workload policies never see, each with what the program
 * declares instead. A `helm.sh/v3` Release hands its chart to Helm inside the provider: the
 * Deployments, RBAC and Services it installs never reach the engine as resources (`helm.sh/v4` Chart
 * renders the same chart into resources of their own). A Docker Swarm Service runs its task's
 * containers with a spec of its own (privileges, capabilities, mounts) that no container policy
 * reads. A Docker Plugin runs as root with the host access it is granted.
 */
const UNCHECKED = new Map<string, { runs: (props: Record<string, any>) => string; instead: string }>(Object.entries({
    "kubernetes:helm.sh/v3:Release": {
        runs: (p) => `installs the objects of ${str(p.chart) === undefined ? "its chart" : `the chart "${str(p.chart)}"`} inside the provider (Helm applies them)`,
        instead: "deploy the chart with kubernetes:helm.sh/v4:Chart, whose objects the pack checks like any other",
    },
    "docker:index/service:Service": {
        runs: () => "runs Swarm tasks whose containers (taskSpec.containerSpec) no container policy reads",
        instead: "declare the container as docker.Container, which every container policy checks",
    },
    "docker:index/plugin:Plugin": {
        runs: (p) => `installs the engine plugin ${str(p.name) === undefined ? "it names" : `"${str(p.name)}"`}, which runs as root with the host access it is granted`,
        instead: "run what it does as a docker.Container the pack checks, or install the plugin outside the program after review",
    },
}));

export const noUncheckedWorkloads: ResourceValidationPolicy = {
    name: "no-unchecked-workloads",
    description:
        "Containers run only from resources the pack checks: no kubernetes:helm.sh/v3:Release (Helm installs its chart's " +
        "objects where no policy sees them; use kubernetes:helm.sh/v4:Chart, which registers each object), no Docker Swarm " +
        "Service (its containers' spec is read by no container policy; use docker.Container), no Docker engine Plugin " +
        "(root on the host with what it is granted).",
    severity: "high",
    validateResource: (args, reportViolation) => {
        const unchecked = UNCHECKED.get(args.type);
        if (unchecked === undefined) return args.notApplicable("only resources that run containers out of the pack's sight");
        reportViolation(`${describe(args.type, args.name)} ${unchecked.runs(plain(args.props))}, where no policy of this pack checks ` +
            `what runs; ${unchecked.instead}.`);
    },
};
