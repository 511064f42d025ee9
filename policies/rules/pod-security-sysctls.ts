import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { PSS_CONTROLS, SAFE_SYSCTLS } from "../lib/pss";
import { forEveryWorkload, Workload } from "../lib/rule";
import { arr, isRecord, str } from "../lib/values";

export interface SysctlsConfig {
    /** Sysctls allowed besides the PSS safe set. */
    allowedSysctls: string[];
}

const defaults: SysctlsConfig = { allowedSysctls: [] };

/** PSS baseline "Sysctls": only the namespaced safe set (pod securityContext.sysctls; Docker `sysctls`). */
export function unsafeSysctls(w: Workload, cfg: SysctlsConfig = defaults): string[] {
    const allowed = new Set([...SAFE_SYSCTLS, ...cfg.allowedSysctls]);
    const names = w.target === "docker"
        ? (isRecord(w.props.sysctls) ? Object.keys(w.props.sysctls) : [])
        : arr(w.pod?.spec.securityContext?.sysctls).map((s) => (isRecord(s) ? str(s.name) : undefined)).filter((n): n is string => !!n);
    return names.filter((n) => !allowed.has(n));
}

export const podSecuritySysctls: ResourceValidationPolicy = {
    name: "pod-security-sysctls",
    description:
        "Pod Security Standards baseline, sysctls: only the namespaced safe set (kernel.shm_rmid_forced, " +
        "net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, ...), on both targets.",
    severity: "high",
    configSchema: {
        properties: { allowedSysctls: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: forEveryWorkload((w, args, reportViolation) => {
        const bad = unsafeSysctls(w, readConfig(args, defaults));
        if (bad.length === 0) return;
        const where = w.target === "docker" ? "sysctls" : "securityContext.sysctls";
        reportViolation(
            `${w.label} sets ${where} ${bad.join(", ")} (PSS baseline "${PSS_CONTROLS.sysctls}"): they reach beyond the ` +
            `container's namespace; remove them or use only ${SAFE_SYSCTLS.slice(0, 4).join(", ")}, ... (list: policy config allowedSysctls).`,
        );
    }),
};
