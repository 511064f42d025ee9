import { ResourceValidationPolicy } from "@pulumi/policy";
import { eitherTarget, forDockerContainer, forEveryContainer, securityContextOf } from "../lib/remediation";
import { Workload, workloadRule } from "../lib/rule";
import { capabilityList } from "../lib/security";
import { arr, str } from "../lib/values";

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

export function capabilityProblems(w: Workload, cfg: CapabilitiesConfig = defaults): string[] {
    // An own entry only: a workload named `constructor` or `toString` has no exemption.
    const exempted = Object.hasOwn(cfg.capabilityExemptions, w.id.workload) ? cfg.capabilityExemptions[w.id.workload] : [];
    const allowed = new Set([...cfg.allowedCapabilities, ...exempted].map((c) => c.toUpperCase()));
    if (w.target === "docker") {
        return check("", capabilityList(w.props.capabilities?.drops), capabilityList(w.props.capabilities?.adds), allowed);
    }
    // Kubernetes compares capability names exactly (Pod Security admission: "ALL", "NET_BIND_SERVICE").
    const names = (v: unknown) => arr(v).map((c) => str(c)).filter((c): c is string => c !== undefined);
    return w.containers.flatMap((c) => check(
        `container "${c.name}" `,
        names(c.container.securityContext?.capabilities?.drop),
        names(c.container.securityContext?.capabilities?.add),
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
    validateResource: workloadRule(defaults, capabilityProblems, (w, p) => {
        const fix = w.target === "docker"
            ? "set capabilities: { drops: [\"ALL\"] } and add back only what the process needs"
            : "set securityContext.capabilities.drop: [\"ALL\"] on every container";
        return `${w.label} ${p}; ${fix} (exemptions: policy config capabilityExemptions).`;
    }),
    // Mechanical part: drop ALL (it subsumes any other drop). Added capabilities are kept: whether the
    // process needs them is a decision, so an extra add stays a violation.
    remediateResource: eitherTarget(
        forDockerContainer((props) => {
            const adds = Array.isArray(props.capabilities?.adds) ? Array.from(props.capabilities.adds) : undefined;
            props.capabilities = adds?.length ? { adds, drops: ["ALL"] } : { drops: ["ALL"] };
        }),
        forEveryContainer((c) => {
            const sc = securityContextOf(c);
            const add = Array.isArray(sc.capabilities?.add) ? Array.from(sc.capabilities.add) : undefined;
            sc.capabilities = add?.length ? { add, drop: ["ALL"] } : { drop: ["ALL"] };
        }),
    ),
};
