import { ResourceValidationPolicy } from "@pulumi/policy";
import { PSS_CONTROLS } from "../lib/pss";
import { Workload, workloadRule } from "../lib/rule";
import { arr, str } from "../lib/values";

/**
 * PSS baseline "/proc mount type": procMount Default (masked /proc). Docker's equivalent of an
 * Unmasked /proc is `securityOpts systempaths=unconfined`.
 */
export function procMountProblems(w: Workload): string[] {
    if (w.target === "docker") {
        return arr(w.props.securityOpts).map((o) => str(o)?.replace(/\s/g, "").toLowerCase())
            .filter((o) => o === "systempaths=unconfined" || o === "systempaths:unconfined")
            .map((o) => `sets securityOpts "${o}", unmasking /proc and /sys paths`);
    }
    return w.containers
        .filter((c) => { const m = str(c.container.securityContext?.procMount); return m !== undefined && m !== "Default"; })
        .map((c) => `container "${c.name}" sets procMount ${c.container.securityContext.procMount}`);
}

export const podSecurityProcMount: ResourceValidationPolicy = {
    name: "pod-security-proc-mount",
    description:
        "Pod Security Standards baseline, /proc mount type: containers keep the default masked /proc " +
        "(procMount Default; on Docker no systempaths=unconfined).",
    severity: "high",
    validateResource: workloadRule({}, procMountProblems, (w, p) => w.target === "docker"
        ? `${w.label} ${p}; remove it.`
        : `${w.label} ${p} (PSS baseline "${PSS_CONTROLS.procMount}"); leave procMount unset or Default.`),
};
