import { ResourceValidationPolicy } from "@pulumi/policy";
import { PSS_CONTROLS, SELINUX_TYPES } from "../lib/pss";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, str } from "../lib/values";

function optionsProblems(where: string, opts: unknown): string[] {
    if (!isRecord(opts)) return [];
    const out: string[] = [];
    const type = str(opts.type);
    if (type !== undefined && !SELINUX_TYPES.includes(type)) out.push(`${where}sets seLinuxOptions.type ${type}`);
    for (const field of ["user", "role"]) {
        const v = str(opts[field]);
        if (v !== undefined && v !== "") out.push(`${where}sets seLinuxOptions.${field} ${v}`);
    }
    return out;
}

/**
 * PSS baseline "SELinux": seLinuxOptions.type only container_t, container_init_t, container_kvm_t or
 * container_engine_t; no custom user or role. Docker: no `label=disable`, `label=user:`, `label=role:`,
 * or a label type outside that list.
 */
export function seLinuxProblems(w: Workload): string[] {
    if (w.target === "docker") {
        const out: string[] = [];
        for (const raw of arr(w.props.securityOpts)) {
            const o = str(raw)?.replace(/\s/g, "");
            // A bare "disable" is label=disable to the engine (moby parseSecurityOpt).
            if (o?.toLowerCase() === "disable") {
                out.push(`sets securityOpts "${o}" (label=disable to the engine), turning SELinux separation off`);
                continue;
            }
            const m = o === undefined ? null : /^label[:=](.*)$/i.exec(o);
            if (!m) continue;
            const [key, value] = m[1].split(":");
            if (key.toLowerCase() === "disable") out.push(`sets securityOpts "${o}", turning SELinux separation off`);
            else if (key === "user" || key === "role") out.push(`sets securityOpts "${o}" (a custom SELinux ${key})`);
            else if (key === "type" && !SELINUX_TYPES.includes(value ?? "")) out.push(`sets securityOpts "${o}" (SELinux type ${value})`);
        }
        return out;
    }
    if (!w.pod) return [];
    return [
        ...optionsProblems("pod ", w.pod.spec.securityContext?.seLinuxOptions),
        ...w.containers.flatMap((c) => optionsProblems(`container "${c.name}" `, c.container.securityContext?.seLinuxOptions)),
    ];
}

export const podSecuritySeLinux: ResourceValidationPolicy = {
    name: "pod-security-selinux",
    description:
        "Pod Security Standards baseline, SELinux: no custom SELinux user or role, and only the container_* types; " +
        "Docker containers keep SELinux labelling on.",
    severity: "high",
    validateResource: workloadRule({}, seLinuxProblems, (w, p) => w.target === "docker"
        ? `${w.label} ${p}; remove the label option so the engine's default confinement applies.`
        : `${w.label} ${p} (PSS baseline "${PSS_CONTROLS.seLinux}"); leave seLinuxOptions unset or use type container_t.`),
};
