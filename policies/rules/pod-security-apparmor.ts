import { ResourceValidationPolicy } from "@pulumi/policy";
import { PSS_CONTROLS } from "../lib/pss";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, str } from "../lib/values";

const ANNOTATION = "container.apparmor.security.beta.kubernetes.io/";

export interface AppArmorConfig {
    /**
     * Session 44: AppArmor profiles loaded on the nodes (Kubernetes `Localhost`, the legacy annotation's
     * `localhost/<name>`; Docker `apparmor=<name>` other than docker-default) the operator has reviewed.
     */
    reviewedAppArmorProfiles: string[];
}

const defaults: AppArmorConfig = { reviewedAppArmorProfiles: [] };

/** The suffix of a problem with a profile on the node, which the message turns into its own fix. */
const UNREVIEWED = "a profile on the node the pack cannot read, not listed in reviewedAppArmorProfiles";

function profileProblem(where: string, profile: unknown, cfg: AppArmorConfig): string | undefined {
    if (!isRecord(profile)) return undefined;
    const type = str(profile.type);
    if (type === "Localhost") {
        const name = str(profile.localhostProfile);
        if (name === undefined && profile.localhostProfile !== undefined && profile.localhostProfile !== null) return undefined;
        return name !== undefined && cfg.reviewedAppArmorProfiles.includes(name.trim()) ? undefined
            : `${where}sets appArmorProfile Localhost ${name === undefined ? "without a localhostProfile" : `"${name}"`}, ${UNREVIEWED}`;
    }
    return type === undefined || type === "RuntimeDefault" ? undefined : `${where}sets appArmorProfile.type ${type}`;
}

/**
 * PSS baseline "AppArmor": no Unconfined profile (field or legacy annotation); Docker: no apparmor=unconfined.
 * Session 44: a profile loaded on the node (Localhost; Docker's `apparmor=<name>`) is out of the pack's
 * sight, and passes only when listed in reviewedAppArmorProfiles.
 */
export function appArmorProblems(w: Workload, cfg: AppArmorConfig = defaults): string[] {
    if (w.target === "docker") {
        const out: string[] = [];
        for (const o of arr(w.props.securityOpts).map((x) => str(x)?.replace(/\s/g, ""))) {
            const m = o === undefined ? null : /^apparmor[:=](.*)$/i.exec(o);
            if (!m) continue;
            if (m[1].toLowerCase() === "unconfined") out.push(`sets securityOpts "${o!.toLowerCase()}", running without an AppArmor profile`);
            else if (m[1] !== "docker-default" && !cfg.reviewedAppArmorProfiles.includes(m[1])) out.push(`sets securityOpts "${o}", ${UNREVIEWED}`);
        }
        return out;
    }
    if (!w.pod) return [];
    const out: string[] = [];
    const pod = profileProblem("pod ", w.pod.spec.securityContext?.appArmorProfile, cfg);
    if (pod) out.push(pod);
    for (const c of w.containers) {
        const p = profileProblem(`container "${c.name}" `, c.container.securityContext?.appArmorProfile, cfg);
        if (p) out.push(p);
    }
    for (const [key, value] of Object.entries(w.pod.annotations)) {
        if (!key.startsWith(ANNOTATION)) continue;
        if (value.startsWith("localhost/")) {
            if (!cfg.reviewedAppArmorProfiles.includes(value.slice("localhost/".length))) out.push(`annotation ${key} is "${value}", ${UNREVIEWED}`);
        } else if (value !== "" && value !== "runtime/default") {
            out.push(`annotation ${key} is "${value}"`);
        }
    }
    return out;
}

export const podSecurityAppArmor: ResourceValidationPolicy = {
    name: "pod-security-apparmor",
    description:
        "Pod Security Standards baseline, AppArmor: no container runs unconfined (appArmorProfile RuntimeDefault or " +
        "Localhost, or the legacy annotation runtime/default|localhost/*); Docker containers keep the default profile. A profile on the node " +
        "(Localhost, Docker apparmor=<name>) only when listed in reviewedAppArmorProfiles.",
    severity: "high",
    configSchema: {
        properties: { reviewedAppArmorProfiles: { type: "array", items: { type: "string" }, default: defaults.reviewedAppArmorProfiles } },
    },
    validateResource: workloadRule(defaults, appArmorProblems, (w, p) => p.endsWith(UNREVIEWED)
        ? `${w.label} ${p}; use the runtime's default profile (RuntimeDefault; on Docker, no apparmor option), or review the profile on every node ` +
            "and list its name in this policy's reviewedAppArmorProfiles."
        : w.target === "docker"
        ? `${w.label} ${p}; remove it so Docker applies its docker-default profile.`
        : `${w.label} ${p} (PSS baseline "${PSS_CONTROLS.appArmor}"); use appArmorProfile: { type: RuntimeDefault } or a Localhost profile.`),
};
