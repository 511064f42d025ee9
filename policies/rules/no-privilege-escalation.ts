import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { effective } from "../lib/security";
import { arr, str } from "../lib/values";

export function dockerEscalationProblems(props: Record<string, any>): string[] {
    const opts = arr(props.securityOpts).map((o) => str(o)).filter((o): o is string => !!o).map((o) => o.replace(/\s/g, "").toLowerCase());
    const out: string[] = [];
    if (!opts.some((o) => o === "no-new-privileges" || o === "no-new-privileges:true" || o === "no-new-privileges=true")) {
        out.push("does not set securityOpts [\"no-new-privileges:true\"]");
    }
    for (const o of opts) {
        if (/^(seccomp|apparmor)[:=]unconfined$/.test(o) || /^label[:=]disable$/.test(o)) out.push(`disables a kernel confinement (securityOpts "${o}")`);
    }
    return out;
}

export function escalationProblems(w: Workload): string[] {
    if (w.target === "docker") return dockerEscalationProblems(w.props);
    const out: string[] = [];
    for (const c of w.containers) {
        if (c.container.securityContext?.allowPrivilegeEscalation !== false) {
            out.push(`container "${c.name}" does not set allowPrivilegeEscalation: false`);
        }
        const seccomp = effective(w.pod!.spec, c, "seccompProfile");
        const kind = str(seccomp?.type);
        if (kind !== "RuntimeDefault" && kind !== "Localhost") {
            out.push(`container "${c.name}" has seccompProfile ${kind ?? "unset"} (needs RuntimeDefault or Localhost)`);
        }
    }
    return out;
}

export const noPrivilegeEscalation: ResourceValidationPolicy = {
    name: "no-privilege-escalation",
    description:
        "Processes cannot gain privileges: Docker containers set no-new-privileges and keep seccomp/AppArmor; " +
        "Kubernetes containers set allowPrivilegeEscalation: false and seccompProfile RuntimeDefault.",
    severity: "high",
    validateResource: workloadRule({}, escalationProblems, (w, p) => {
        const fix = w.target === "docker"
            ? "add securityOpts: [\"no-new-privileges:true\"] and keep the default seccomp and AppArmor profiles"
            : "set securityContext.allowPrivilegeEscalation: false and seccompProfile: { type: RuntimeDefault }";
        return `${w.label} ${p}; ${fix}.`;
    }),
};
