import { ResourceValidationPolicy } from "@pulumi/policy";
import { eitherTarget, forDockerContainer, forEveryPodSpec, podSpecContainers, securityContextOf } from "../lib/remediation";
import { Workload, workloadRule } from "../lib/rule";
import { arr, str } from "../lib/values";

/** A seccomp profile given inline (`seccomp=<JSON>`) whose default lets every system call through. */
function allowsByDefault(opt: string): boolean {
    const m = /^seccomp[:=](\{.*)$/.exec(opt);
    if (!m) return false;
    try {
        const action = str((JSON.parse(m[1]) as Record<string, unknown>).defaultaction);
        return action === "scmp_act_allow" || action === "scmp_act_log";
    } catch {
        return false;
    }
}

/**
 * Docker's security options as the engine reads them (moby `parseSecurityOpt`): `no-new-privileges`
 * alone is true, and of several `no-new-privileges:<bool>` the last wins (a later ":false" undoes an
 * earlier ":true"); a bare `disable` is `label=disable`.
 */
export function dockerEscalationProblems(props: Record<string, any>): string[] {
    const opts = arr(props.securityOpts).map((o) => str(o)).filter((o): o is string => !!o).map((o) => o.replace(/\s/g, "").toLowerCase());
    const out: string[] = [];
    const nnp = opts.filter((o) => /^no-new-privileges([:=].*)?$/.test(o)).pop();
    if (nnp === undefined || !["no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"].includes(nnp)) {
        out.push(nnp === undefined ? "does not set securityOpts [\"no-new-privileges:true\"]" : `sets securityOpts "${nnp}" last (the engine keeps the last no-new-privileges), not "no-new-privileges:true"`);
    }
    for (const o of opts) {
        if (/^(seccomp|apparmor)[:=]unconfined$/.test(o) || /^label[:=]disable$/.test(o) || o === "disable") out.push(`disables a kernel confinement (securityOpts "${o}")`);
        // Writable cgroups: the container may change its own (and its children's) resource limits and devices.
        else if (/^writable-cgroups[:=]true$/.test(o)) out.push(`disables a kernel confinement (securityOpts "${o}")`);
        else if (allowsByDefault(o)) out.push("disables a kernel confinement (securityOpts seccomp with an inline profile whose defaultAction allows every system call)");
    }
    return out;
}

export function escalationProblems(w: Workload): string[] {
    if (w.target === "docker") return dockerEscalationProblems(w.props);
    const out: string[] = [];
    const valid = (kind: string | undefined) => kind === "RuntimeDefault" || kind === "Localhost";
    const podProfile = w.pod?.spec.securityContext?.seccompProfile;
    const podKind = str(podProfile?.type);
    if (podProfile !== undefined && podProfile !== null && !valid(podKind)) {
        out.push(`pod has seccompProfile ${podKind ?? "unset"} (needs RuntimeDefault or Localhost)`);
    }
    for (const c of w.containers) {
        if (c.container.securityContext?.allowPrivilegeEscalation !== false) {
            out.push(`container "${c.name}" does not set allowPrivilegeEscalation: false`);
        }
        const own = c.container.securityContext?.seccompProfile;
        const kind = own !== undefined && own !== null ? str(own.type) : (valid(podKind) ? podKind : undefined);
        if (!valid(kind)) {
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
    // Mechanical: no-new-privileges on Docker; allowPrivilegeEscalation: false (not on a privileged
    // container, where the API rejects it: that one stays a violation of no-privileged-containers) and
    // the RuntimeDefault seccomp profile wherever none valid is set.
    remediateResource: eitherTarget(
        forDockerContainer((props) => {
            const opts = Array.isArray(props.securityOpts) ? Array.from(props.securityOpts as string[]) : [];
            if (dockerEscalationProblems({ securityOpts: opts }).some((p) => p.startsWith("does not set"))) {
                props.securityOpts = [...opts, "no-new-privileges:true"];
            }
        }),
        forEveryPodSpec((spec) => {
            const valid = (t: unknown) => t === "RuntimeDefault" || t === "Localhost";
            if (spec.securityContext === undefined || spec.securityContext === null) spec.securityContext = {};
            if (!valid(spec.securityContext.seccompProfile?.type)) spec.securityContext.seccompProfile = { type: "RuntimeDefault" };
            for (const c of podSpecContainers(spec)) {
                const sc = securityContextOf(c);
                if (sc.privileged !== true) sc.allowPrivilegeEscalation = false;
                if (sc.seccompProfile !== undefined && sc.seccompProfile !== null && !valid(sc.seccompProfile.type)) {
                    sc.seccompProfile = { type: "RuntimeDefault" };
                }
            }
        }),
    ),
};
