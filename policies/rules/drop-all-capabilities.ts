import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { capabilityList } from "../lib/security";
import { unwrap } from "../lib/values";
import { describe, DOCKER_CONTAINER, identity, isK8sWorkload, podContainers, podTemplate } from "../lib/workloads";

export interface CapabilitiesConfig {
    /** Capabilities any container may add back after dropping ALL (PSS restricted: NET_BIND_SERVICE). */
    allowedCapabilities: string[];
    /** Extra capabilities per workload name (trading.io/workload), e.g. a root entrypoint that chowns and drops to a user. */
    capabilityExemptions: Record<string, string[]>;
}

const defaults: CapabilitiesConfig = { allowedCapabilities: ["NET_BIND_SERVICE"], capabilityExemptions: {} };

function check(where: string, drops: string[], adds: string[], allowed: Set<string>): string[] {
    const out: string[] = [];
    if (!drops.includes("ALL")) out.push(`${where}does not drop ALL capabilities`);
    const extra = adds.filter((a) => !allowed.has(a));
    if (extra.length) out.push(`${where}adds capabilities ${extra.join(", ")}`);
    return out;
}

export function capabilityProblems(type: string, name: string, props: Record<string, any>, cfg: CapabilitiesConfig = defaults): string[] {
    const id = identity(type, name, props);
    const allowed = new Set([...cfg.allowedCapabilities, ...(cfg.capabilityExemptions[id.workload] ?? [])].map((c) => c.toUpperCase()));
    if (type === DOCKER_CONTAINER) {
        return check("", capabilityList(props.capabilities?.drops), capabilityList(props.capabilities?.adds), allowed);
    }
    const tmpl = podTemplate(type, props);
    return (tmpl ? podContainers(tmpl.spec) : []).flatMap((c) => check(
        `container "${c.name}" `,
        capabilityList(c.container.securityContext?.capabilities?.drop),
        capabilityList(c.container.securityContext?.capabilities?.add),
        allowed,
    ));
}

export const dropAllCapabilities: ResourceValidationPolicy = {
    name: "drop-all-capabilities",
    description:
        "Every container drops ALL Linux capabilities and adds back only NET_BIND_SERVICE (plus per-workload " +
        "exemptions from policy config).",
    severity: "high",
    configSchema: {
        properties: {
            allowedCapabilities: { type: "array", items: { type: "string" }, default: defaults.allowedCapabilities },
            capabilityExemptions: { type: "object", additionalProperties: { type: "array", items: { type: "string" } }, default: {} },
        },
    },
    validateResource: (args, reportViolation) => {
        if (args.type !== DOCKER_CONTAINER && !isK8sWorkload(args.type)) args.notApplicable("only containers");
        const cfg = readConfig(args, defaults);
        for (const p of capabilityProblems(args.type, args.name, unwrap(args.props), cfg)) {
            const fix = args.type === DOCKER_CONTAINER
                ? "set capabilities: { drops: [\"ALL\"] } and add back only what the process needs"
                : "set securityContext.capabilities.drop: [\"ALL\"] on every container";
            reportViolation(`${describe(args.type, args.name)} ${p}; ${fix} (exemptions: policy config capabilityExemptions).`);
        }
    },
};

