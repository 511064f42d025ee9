/**
 * Kubernetes Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
 * the controls' names as the apiserver's Pod Security admission reports them, and the value sets
 * the standards allow. The rules check the pod spec the way admission does (pod and container level).
 */

/** Control names as they appear in `violates PodSecurity "restricted:latest": <control> (...)`. */
export const PSS_CONTROLS = {
    hostProcess: "hostProcess",
    hostNamespaces: "host namespaces",
    privileged: "privileged",
    baselineCapabilities: "non-default capabilities",
    hostPathVolumes: "hostPath volumes",
    hostPorts: "hostPort",
    /** Kubernetes 1.34+ (KEP-4940). */
    hostProbes: "probe or lifecycle host",
    appArmor: "forbidden AppArmor profile",
    seLinux: "seLinuxOptions",
    procMount: "procMount",
    seccompBaseline: "seccompProfile",
    sysctls: "forbidden sysctls",
    volumeTypes: "restricted volume types",
    privilegeEscalation: "allowPrivilegeEscalation != false",
    runAsNonRoot: "runAsNonRoot != true",
    runAsUser: "runAsUser=0",
    seccompRestricted: "seccompProfile",
    restrictedCapabilities: "unrestricted capabilities",
} as const;

/** Baseline: capabilities a container may add (the container runtimes' default set). */
export const BASELINE_CAPABILITIES = [
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
];

/** Baseline: the namespaced, isolated sysctls (Kubernetes 1.32+ list). */
export const SAFE_SYSCTLS = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/** Restricted: the only volume sources a pod may use. */
export const RESTRICTED_VOLUME_TYPES = [
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret",
];

/** Baseline: SELinux types a pod may request ("" = the runtime's default). */
export const SELINUX_TYPES = ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
