/**
 * A generated corpus of Pod specs for the Pod Security oracle test: a pod that meets the
 * "restricted" standard, variants that stay valid, and variants that break exactly one control
 * (or the fewest the API allows: a privileged container cannot also forbid privilege escalation).
 */

export interface CorpusPod {
    name: string;
    /**
 * "valid", or the Pod Security control the variant breaks, as admission names it under `restricted`:
 * there the restricted checks replace the baseline ones they tighten, so a non-default capability
 * is reported as "unrestricted capabilities" and a hostPath volume as "restricted volume types"
 * (measured against kube-apiserver 1.34).
 */
    intent: string;
    pod: Record<string, any>;
}

function base(name: string, namespace: string): Record<string, any> {
    return {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace, labels: { "trading.io/workload": name, "trading.io/role": "service" } },
        spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } },
            containers: [{
                name: "app",
                image: "registry.example.com/trading/app:1.0.0",
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true },
            }],
        },
    };
}

const initContainer = () => ({
    name: "init",
    image: "registry.example.com/trading/init:1.0.0",
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
});

type Edit = (pod: any, c: any) => void;

/** [intent, short name, edit of the base pod (c = its first container)] */
const VARIANTS: Array<[string, string, Edit]> = [
    // Valid: the base, and what the standards allow besides it.
    ["valid", "base", () => undefined],
    ["valid", "net-bind-service", (_p, c) => { c.securityContext.capabilities.add = ["NET_BIND_SERVICE"]; }],
    ["valid", "drop-all-and-more", (_p, c) => { c.securityContext.capabilities.drop = ["ALL", "NET_RAW"]; }],
    ["valid", "seccomp-on-container", (p, c) => { delete p.spec.securityContext.seccompProfile; c.securityContext.seccompProfile = { type: "RuntimeDefault" }; }],
    ["valid", "seccomp-localhost", (p) => { p.spec.securityContext.seccompProfile = { type: "Localhost", localhostProfile: "profiles/trading.json" }; }],
    ["valid", "non-root-on-container", (p, c) => { delete p.spec.securityContext.runAsNonRoot; c.securityContext.runAsNonRoot = true; }],
    ["valid", "uid-on-container", (p, c) => { delete p.spec.securityContext.runAsUser; c.securityContext.runAsUser = 20000; }],
    ["valid", "safe-sysctls", (p) => { p.spec.securityContext.sysctls = [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }, { name: "kernel.shm_rmid_forced", value: "1" }]; }],
    ["valid", "tcp-sysctls", (p) => { p.spec.securityContext.sysctls = [{ name: "net.ipv4.tcp_keepalive_time", value: "600" }]; }],
    ["valid", "allowed-volumes", (p, c) => {
        p.spec.volumes = [
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, { name: "cfg", configMap: { name: "app-config" } },
            { name: "sec", secret: { secretName: "app-credentials" } }, { name: "proj", projected: { sources: [{ configMap: { name: "app-config" } }] } },
            { name: "meta", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
        ];
        c.volumeMounts = [{ name: "tmp", mountPath: "/tmp" }, { name: "cfg", mountPath: "/etc/app" }];
    }],
    ["valid", "pvc-volume", (p) => { p.spec.volumes = [{ name: "data", persistentVolumeClaim: { claimName: "data" } }]; }],
    ["valid", "csi-volume", (p) => { p.spec.volumes = [{ name: "csi", csi: { driver: "secrets-store.csi.k8s.io", readOnly: true } }]; }],
    ["valid", "apparmor-runtime-default", (p) => { p.spec.securityContext.appArmorProfile = { type: "RuntimeDefault" }; }],
    ["valid", "apparmor-localhost", (_p, c) => { c.securityContext.appArmorProfile = { type: "Localhost", localhostProfile: "trading" }; }],
    ["valid", "apparmor-annotation", (p) => { p.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/app": "runtime/default" }; }],
    ["valid", "selinux-container-t", (p) => { p.spec.securityContext.seLinuxOptions = { type: "container_t", level: "s0:c123,c456" }; }],
    ["valid", "selinux-level-only", (_p, c) => { c.securityContext.seLinuxOptions = { level: "s0:c1,c2" }; }],
    ["valid", "proc-mount-default", (_p, c) => { c.securityContext.procMount = "Default"; }],
    ["valid", "explicit-falses", (p, c) => { p.spec.hostNetwork = false; p.spec.hostPID = false; p.spec.hostIPC = false; c.securityContext.privileged = false; }],
    ["valid", "init-container", (p) => { p.spec.initContainers = [initContainer()]; }],
    ["valid", "two-containers", (p) => { p.spec.containers.push({ ...structuredClone(p.spec.containers[0]), name: "sidecar" }); }],
    ["valid", "container-port", (_p, c) => { c.ports = [{ containerPort: 8080, name: "http" }]; }],
    ["valid", "probes-own-address", (_p, c) => {
        c.livenessProbe = { httpGet: { path: "/health", port: 8080 } };
        c.readinessProbe = { tcpSocket: { port: 8080, host: "" } };
        c.lifecycle = { preStop: { sleep: { seconds: 5 } } };
    }],

    // Baseline controls.
    ["host namespaces", "host-network", (p) => { p.spec.hostNetwork = true; }],
    ["host namespaces", "host-pid", (p) => { p.spec.hostPID = true; }],
    ["host namespaces", "host-ipc", (p) => { p.spec.hostIPC = true; }],
    ["privileged", "privileged", (_p, c) => { c.securityContext.privileged = true; delete c.securityContext.allowPrivilegeEscalation; }],
    ["privileged", "privileged-init", (p) => { const i = initContainer(); (i.securityContext as any).privileged = true; delete (i.securityContext as any).allowPrivilegeEscalation; p.spec.initContainers = [i]; }],
    ["unrestricted capabilities", "add-net-admin", (_p, c) => { c.securityContext.capabilities.add = ["NET_ADMIN"]; }],
    ["unrestricted capabilities", "add-sys-time", (_p, c) => { c.securityContext.capabilities.add = ["SYS_TIME"]; }],
    ["unrestricted capabilities", "add-chown", (_p, c) => { c.securityContext.capabilities.add = ["CHOWN"]; }],
    ["unrestricted capabilities", "add-cap-prefixed", (_p, c) => { c.securityContext.capabilities.add = ["CAP_NET_BIND_SERVICE"]; }],
    ["restricted volume types", "host-path", (p, c) => { p.spec.volumes = [{ name: "logs", hostPath: { path: "/var/log" } }]; c.volumeMounts = [{ name: "logs", mountPath: "/logs", readOnly: true }]; }],
    ["restricted volume types", "docker-socket", (p) => { p.spec.volumes = [{ name: "sock", hostPath: { path: "/var/run/docker.sock", type: "Socket" } }]; }],
    ["hostPort", "host-port", (_p, c) => { c.ports = [{ containerPort: 8080, hostPort: 8080 }]; }],
    ["forbidden AppArmor profile", "apparmor-pod-unconfined", (p) => { p.spec.securityContext.appArmorProfile = { type: "Unconfined" }; }],
    ["forbidden AppArmor profile", "apparmor-container-unconfined", (_p, c) => { c.securityContext.appArmorProfile = { type: "Unconfined" }; }],
    ["forbidden AppArmor profile", "apparmor-annotation-unconfined", (p) => { p.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/app": "unconfined" }; }],
    ["seLinuxOptions", "selinux-type-spc", (p) => { p.spec.securityContext.seLinuxOptions = { type: "spc_t" }; }],
    ["seLinuxOptions", "selinux-user", (p) => { p.spec.securityContext.seLinuxOptions = { user: "system_u" }; }],
    ["seLinuxOptions", "selinux-role", (_p, c) => { c.securityContext.seLinuxOptions = { role: "sysadm_r" }; }],
    ["seLinuxOptions", "selinux-container-type", (_p, c) => { c.securityContext.seLinuxOptions = { type: "unconfined_t" }; }],
    ["procMount", "proc-mount-unmasked", (p, c) => { p.spec.hostUsers = false; c.securityContext.procMount = "Unmasked"; }],
    ["forbidden sysctls", "sysctl-msgmax", (p) => { p.spec.securityContext.sysctls = [{ name: "kernel.msgmax", value: "65536" }]; }],
    ["forbidden sysctls", "sysctl-somaxconn", (p) => { p.spec.securityContext.sysctls = [{ name: "net.core.somaxconn", value: "1024" }]; }],
    ["forbidden sysctls", "sysctl-mixed", (p) => { p.spec.securityContext.sysctls = [{ name: "net.ipv4.tcp_syncookies", value: "1" }, { name: "kernel.sem", value: "250 32000 100 128" }]; }],
    ["probe or lifecycle host", "probe-host-metadata", (_p, c) => { c.livenessProbe = { httpGet: { path: "/latest/meta-data/", port: 80, host: "169.254.169.254" } }; }],
    ["probe or lifecycle host", "probe-tcp-host-loopback", (_p, c) => { c.readinessProbe = { tcpSocket: { port: 10250, host: "127.0.0.1" } }; }],
    ["probe or lifecycle host", "lifecycle-host", (_p, c) => { c.lifecycle = { preStop: { httpGet: { path: "/drain", port: 8080, host: "10.0.0.1" } } }; }],
    ["probe or lifecycle host", "startup-probe-host-init", (p) => { const i: any = initContainer(); i.restartPolicy = "Always"; i.startupProbe = { httpGet: { path: "/", port: 443, host: "kubernetes.default.svc" } }; p.spec.initContainers = [i]; }],

    // Restricted controls.
    ["restricted volume types", "volume-nfs", (p) => { p.spec.volumes = [{ name: "share", nfs: { server: "nas.example.com", path: "/exports/data" } }]; }],
    ["restricted volume types", "volume-iscsi", (p) => { p.spec.volumes = [{ name: "lun", iscsi: { targetPortal: "10.0.0.1:3260", iqn: "iqn.2001-04.com.example:storage", lun: 0 } }]; }],
    ["restricted volume types", "volume-cephfs", (p) => { p.spec.volumes = [{ name: "ceph", cephfs: { monitors: ["10.0.0.2:6789"] } }]; }],
    ["restricted volume types", "volume-fc", (p) => { p.spec.volumes = [{ name: "fc", fc: { targetWWNs: ["500a0982991b8dc5"], lun: 2 } }]; }],
    ["allowPrivilegeEscalation != false", "ape-unset", (_p, c) => { delete c.securityContext.allowPrivilegeEscalation; }],
    ["allowPrivilegeEscalation != false", "ape-true", (_p, c) => { c.securityContext.allowPrivilegeEscalation = true; }],
    ["allowPrivilegeEscalation != false", "ape-init-unset", (p) => { const i = initContainer(); delete (i.securityContext as any).allowPrivilegeEscalation; p.spec.initContainers = [i]; }],
    ["runAsNonRoot != true", "non-root-unset", (p) => { delete p.spec.securityContext.runAsNonRoot; }],
    ["runAsNonRoot != true", "non-root-pod-false", (p) => { p.spec.securityContext.runAsNonRoot = false; }],
    ["runAsNonRoot != true", "non-root-container-false", (_p, c) => { c.securityContext.runAsNonRoot = false; }],
    ["runAsUser=0", "uid-0-pod", (p) => { p.spec.securityContext.runAsUser = 0; }],
    ["runAsUser=0", "uid-0-container", (_p, c) => { c.securityContext.runAsUser = 0; }],
    ["seccompProfile", "seccomp-unset", (p) => { delete p.spec.securityContext.seccompProfile; }],
    ["seccompProfile", "seccomp-pod-unconfined", (p) => { p.spec.securityContext.seccompProfile = { type: "Unconfined" }; }],
    ["seccompProfile", "seccomp-container-unconfined", (_p, c) => { c.securityContext.seccompProfile = { type: "Unconfined" }; }],
    ["unrestricted capabilities", "drop-missing", (_p, c) => { delete c.securityContext.capabilities; }],
    ["unrestricted capabilities", "drop-lowercase-all", (_p, c) => { c.securityContext.capabilities.drop = ["all"]; }],
    ["unrestricted capabilities", "drop-net-raw-only", (_p, c) => { c.securityContext.capabilities.drop = ["NET_RAW"]; }],
    ["unrestricted capabilities", "drop-missing-init", (p) => { const i = initContainer(); delete (i.securityContext as any).capabilities; p.spec.initContainers = [i]; }],
];

export function podSecurityCorpus(namespace: string): CorpusPod[] {
    return VARIANTS.map(([intent, short, change]) => {
        const name = `pss-${short}`;
        const pod = base(name, namespace);
        change(pod, pod.spec.containers[0]);
        return { name, intent, pod };
    });
}
