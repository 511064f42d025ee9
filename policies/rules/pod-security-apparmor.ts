import { ResourceValidationPolicy } from "@pulumi/policy";
import { PSS_CONTROLS } from "../lib/pss";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, str } from "../lib/values";

const ANNOTATION = "container.apparmor.security.beta.kubernetes.io/";

function profileProblem(where: string, profile: unknown): string | undefined {
    if (!isRecord(profile)) return undefined;
    const type = str(profile.type);
    return type === undefined || type === "RuntimeDefault" || type === "Localhost"
        ? undefined
        : `${where}sets appArmorProfile.type ${type}`;
}

/** PSS baseline "AppArmor": no Unconfined profile (field or legacy annotation); Docker: no apparmor=unconfined. */
export function appArmorProblems(w: Workload): string[] {
    if (w.target === "docker") {
        return arr(w.props.securityOpts).map((o) => str(o)?.replace(/\s/g, "").toLowerCase())
            .filter((o) => o === "apparmor=unconfined" || o === "apparmor:unconfined")
            .map((o) => `sets securityOpts "${o}", running without an AppArmor profile`);
    }
    if (!w.pod) return [];
    const out: string[] = [];
    const pod = profileProblem("pod ", w.pod.spec.securityContext?.appArmorProfile);
    if (pod) out.push(pod);
    for (const c of w.containers) {
        const p = profileProblem(`container "${c.name}" `, c.container.securityContext?.appArmorProfile);
        if (p) out.push(p);
    }
    for (const [key, value] of Object.entries(w.pod.annotations)) {
        if (!key.startsWith(ANNOTATION)) continue;
        if (value !== "" && value !== "runtime/default" && !value.startsWith("localhost/")) {
            out.push(`annotation ${key} is "${value}"`);
        }
    }
    return out;
}

export const podSecurityAppArmor: ResourceValidationPolicy = {
    name: "pod-security-apparmor",
    description:
        "Pod Security Standards baseline, AppArmor: no container runs unconfined (appArmorProfile RuntimeDefault or " +
        "Localhost, or the legacy annotation runtime/default|localhost/*); Docker containers keep the default profile.",
    severity: "high",
    validateResource: workloadRule({}, appArmorProblems, (w, p) => w.target === "docker"
        ? `${w.label} ${p}; remove it so Docker applies its docker-default profile.`
        : `${w.label} ${p} (PSS baseline "${PSS_CONTROLS.appArmor}"); use appArmorProfile: { type: RuntimeDefault } or a Localhost profile.`),
};
