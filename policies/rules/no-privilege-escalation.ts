import { ResourceValidationPolicy } from "@pulumi/policy";
import { eitherTarget, forDockerContainer, forEveryPodSpec, podSpecContainers, securityContextOf } from "../lib/remediation";
import { Workload, workloadRule } from "../lib/rule";
import { arr, str } from "../lib/values";

/** A seccomp profile given inline (`seccomp=<JSON>`, as the engine's API takes it), parsed; undefined otherwise. */
function inlineProfile(opt: string): Record<string, unknown> | undefined {
    const m = /^seccomp[:=](\{.*)$/.exec(opt);
    if (!m) return undefined;
    try {
        const p: unknown = JSON.parse(m[1]);
        return p !== null && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, unknown>) : undefined;
    } catch {
        return undefined;
    }
}

const ALLOWING = ["scmp_act_allow", "scmp_act_log"];

/** An inline seccomp profile whose default lets every system call through. */
function allowsByDefault(opt: string): boolean {
    return ALLOWING.includes(str(inlineProfile(opt)?.defaultaction) ?? "");
}

/**
 * Session 43: system calls Docker's default profile (moby's profiles/seccomp/default.json) refuses a
 * container unless it holds the capability they need, or always: `unshare` and an unfiltered
 * `clone`/`clone3` create a user namespace with no capability at all (inside it, `mount` and the rest
 * of the kernel's namespaced attack surface), `keyctl`/`add_key`/`request_key` reach the kernel
 * keyrings (not namespaced), `bpf`, `userfaultfd` and `perf_event_open` are the usual exploit
 * primitives, the rest load modules, reboot, set the clock, trace other processes or open files by
 * handle (the "shocker" escape). An inline profile whose default refuses but which allows one of these
 * by name undoes that confinement as an allow-all default does; `clone`/`clone3` count only when
 * allowed without an argument filter (the default profile allows `clone` without namespace flags).
 */
const DEFAULT_PROFILE_REFUSES = new Set([
    "acct", "add_key", "bpf", "chroot", "clock_settime", "create_module", "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount",
    "fsopen", "fspick", "get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
    "mount", "mount_setattr", "move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pidfd_getfd",
    "pivot_root", "process_madvise", "query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "setdomainname", "sethostname", "setns",
    "settimeofday", "stime", "swapoff", "swapon", "_sysctl", "sysfs", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
    "vhangup", "vm86", "vm86old",
]);
const UNFILTERED_ONLY = new Set(["clone", "clone3"]);

/** The system calls an inline profile allows by name that Docker's default profile refuses, sorted. */
function allowsRefusedCalls(opt: string): string[] {
    const profile = inlineProfile(opt);
    if (!profile || !Array.isArray(profile.syscalls)) return [];
    const out = new Set<string>();
    for (const rule of profile.syscalls as unknown[]) {
        if (rule === null || typeof rule !== "object") continue;
        const r = rule as Record<string, unknown>;
        if (!ALLOWING.includes(str(r.action) ?? "")) continue;
        const filtered = Array.isArray(r.args) && r.args.length > 0;
        const names = [...(Array.isArray(r.names) ? r.names : []), r.name].map((n) => str(n)).filter((n): n is string => n !== undefined);
        for (const n of names) if (DEFAULT_PROFILE_REFUSES.has(n) || (UNFILTERED_ONLY.has(n) && !filtered)) out.add(n);
    }
    return [...out].sort();
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
        else if (allowsRefusedCalls(o).length) {
            out.push(`disables a kernel confinement (securityOpts seccomp with an inline profile that allows ${allowsRefusedCalls(o).join(", ")}, which Docker's default profile refuses)`);
        }
    }
    return out;
}

export interface EscalationConfig {
    /**
     * Session 44: `Localhost` seccomp profiles (their `localhostProfile`, the path under the kubelet's
     * seccomp root) the operator has reviewed on every node. None by default.
     */
    reviewedSeccompProfiles: string[];
}

const defaults: EscalationConfig = { reviewedSeccompProfiles: [] };

/**
 * Session 44: a `Localhost` seccomp profile is a file on each node, out of the pack's sight (it may
 * allow every system call, or `unshare`, which session 43 refuses inline on Docker), so it passes only
 * when its name is listed as reviewed. A name unknown during preview is judged at `up`.
 */
function unreviewedLocalhost(where: string, profile: unknown, cfg: EscalationConfig): string | undefined {
    if (profile === null || typeof profile !== "object" || str((profile as Record<string, unknown>).type) !== "Localhost") return undefined;
    const raw = (profile as Record<string, unknown>).localhostProfile;
    const name = str(raw);
    if (name === undefined && raw !== undefined && raw !== null) return undefined;
    if (name !== undefined && cfg.reviewedSeccompProfiles.includes(name.trim())) return undefined;
    return `${where} seccompProfile Localhost ${name === undefined ? "without a localhostProfile" : `"${name}"`}, a profile on the node the pack cannot read, ` +
        "not listed in reviewedSeccompProfiles";
}

export function escalationProblems(w: Workload, cfg: EscalationConfig = defaults): string[] {
    if (w.target === "docker") return dockerEscalationProblems(w.props);
    const out: string[] = [];
    const valid = (kind: string | undefined) => kind === "RuntimeDefault" || kind === "Localhost";
    const podProfile = w.pod?.spec.securityContext?.seccompProfile;
    const podKind = str(podProfile?.type);
    if (podProfile !== undefined && podProfile !== null && !valid(podKind)) {
        out.push(`pod has seccompProfile ${podKind ?? "unset"} (needs RuntimeDefault or Localhost)`);
    }
    const podLocal = unreviewedLocalhost("pod has", podProfile, cfg);
    if (podLocal) out.push(podLocal);
    for (const c of w.containers) {
        const ownLocal = unreviewedLocalhost(`container "${c.name}" has`, c.container.securityContext?.seccompProfile, cfg);
        if (ownLocal) out.push(ownLocal);
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
        "Kubernetes containers set allowPrivilegeEscalation: false and seccompProfile RuntimeDefault (a Localhost profile only when listed in " +
        "reviewedSeccompProfiles).",
    severity: "high",
    configSchema: {
        properties: { reviewedSeccompProfiles: { type: "array", items: { type: "string" }, default: defaults.reviewedSeccompProfiles } },
    },
    validateResource: workloadRule(defaults, escalationProblems, (w, p) => {
        if (p.endsWith("not listed in reviewedSeccompProfiles")) {
            return `${w.label} ${p}; use seccompProfile: { type: RuntimeDefault }, or review the profile on every node (it must refuse what ` +
                "the runtime's default refuses) and list its localhostProfile in this policy's reviewedSeccompProfiles.";
        }
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
