/**
 * Remediations on @pulumi/policy's public contract: a remediation receives the resource's property
 * bag, changes it in place and returns it; the engine then deploys (and validates) what was returned.
 * Reading a value that is not known during preview throws, and the engine reports the remediation as
 * "can't run during preview"; at `pulumi up` the values are known and the fix is applied.
 * These helpers find the pod spec / containers the way lib/rule.ts finds workloads.
 */
import * as docker from "@pulumi/docker";
import { ResourceRemediation, ResourceValidationArgs } from "@pulumi/policy";
import { plain } from "./values";
import { WORKLOAD_CLASSES } from "./rule";
import { identity, podTemplateObject, WorkloadIdentity } from "./workloads";

/** The pod spec inside a Kubernetes workload's (live) property bag, or undefined. */
function podSpecOf(type: string, props: any): any {
    return podTemplateObject(type, props)?.spec;
}

/** Calls `fix` on the pod spec of a Kubernetes workload and returns the (changed) properties. */
export function forEveryPodSpec(fix: (spec: any, id: WorkloadIdentity, args: ResourceValidationArgs) => void): ResourceRemediation {
    const classes = WORKLOAD_CLASSES.filter(([t]) => t === "kubernetes").map(([, cls]) => cls);
    return (args) => {
        if (!classes.some((cls) => args.isType(cls))) return args.notApplicable("only Kubernetes workloads");
        const spec = podSpecOf(args.type, args.props);
        if (spec === undefined || spec === null || typeof spec !== "object") return undefined;
        fix(spec, identity(args.type, args.name, plain(args.props)), args);
        return args.props;
    };
}

/**
 * The init containers and containers of a (live) pod spec, the ones `podContainers` reads for the
 * validations, as the bag's own objects so a change to one is returned; entries that are not objects
 * are left out.
 */
export function podSpecContainers(spec: any): any[] {
    const out: any[] = [];
    for (const list of [spec.initContainers, spec.containers]) {
        if (!Array.isArray(list)) continue;
        for (let i = 0; i < list.length; i++) {
            const c = list[i];
            if (c !== null && typeof c === "object") out.push(c);
        }
    }
    return out;
}

/** Calls `fix` on every container and init container of a Kubernetes workload. */
export function forEveryContainer(fix: (container: any, spec: any, id: WorkloadIdentity, args: ResourceValidationArgs) => void): ResourceRemediation {
    return forEveryPodSpec((spec, id, args) => {
        for (const c of podSpecContainers(spec)) fix(c, spec, id, args);
    });
}

/** A container's securityContext, created when absent (through the bag, so the change is returned). */
export function securityContextOf(c: any): any {
    if (c.securityContext === undefined || c.securityContext === null) c.securityContext = {};
    return c.securityContext;
}

/** Calls `fix` on a Docker container's properties and returns them. */
export function forDockerContainer(fix: (props: any, id: WorkloadIdentity, args: ResourceValidationArgs) => void): ResourceRemediation {
    return (args) => {
        if (!args.isType(docker.Container)) return args.notApplicable("only Docker containers");
        fix(args.props, identity(args.type, args.name, plain(args.props)), args);
        return args.props;
    };
}

/** One remediation per target, as a single function (a policy has one remediateResource). */
export function eitherTarget(onDocker: ResourceRemediation, onKubernetes: ResourceRemediation): ResourceRemediation {
    return (args) => (args.isType(docker.Container) ? onDocker(args) : onKubernetes(args));
}
