/**
 * Realistic resources as the Pulumi program registers them (see docs/conventions.md and the
 * program's components): compliant by default, so a test breaks exactly one thing.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { TestResource } from "./run-pack";

export const NS = "ai-trading";
const DIGEST = "sha256:" + "0".repeat(64);
export const SERVICES_IMAGE = `registry.example.com/ai-trading/ai-trading-services@${DIGEST}`;

export function clone<T>(v: T): T {
    return structuredClone(v);
}

/** A copy of `r` changed by `edit` (which may mutate the copy's props). */
export function edit(r: TestResource, change: (props: any) => void): TestResource {
    const copy = clone(r);
    change(copy.props);
    return copy;
}

export function k8sLabels(workload: string, role: string, extra: Record<string, string> = {}) {
    return { "app.kubernetes.io/name": workload, "app.kubernetes.io/part-of": "ai-trading", "trading.io/role": role, "trading.io/workload": workload, ...extra };
}

export function dockerLabels(workload: string, role: string, extra: Record<string, string> = {}) {
    return Object.entries({ "trading.io/role": role, "trading.io/workload": workload, ...extra }).map(([label, value]) => ({ label, value }));
}

// ---------------------------------------------------------------------------------------- Docker

export function dockerContainer(workload: string, role: string, props: Record<string, any> = {}): TestResource {
    return {
        type: "docker:index/container:Container",
        name: `${workload}-container`,
        props: {
            name: `ai-trading-dev-${workload}`,
            image: "sha256:" + "1".repeat(64),
            envs: ["LOG_LEVEL=info", `SERVICE_NAME=${workload}`],
            networksAdvanced: [{ name: "ai-trading-dev-net", aliases: [workload] }],
            ports: [],
            user: "10001:10001",
            readOnly: true,
            tmpfs: { "/tmp": "rw,noexec,nosuid,size=64m" },
            capabilities: { drops: ["ALL"], adds: [] },
            securityOpts: ["no-new-privileges:true"],
            privileged: false,
            memory: 256,
            cpus: "0.5",
            pidsLimit: 512,
            healthcheck: { tests: ["CMD", "node", "-e", "fetch('http://127.0.0.1:3001/health')"], interval: "10s", timeout: "5s", retries: 3, startPeriod: "15s" },
            labels: dockerLabels(workload, role),
            restart: "unless-stopped",
            mustRun: true,
            ...props,
        },
    };
}

export function dockerService(workload = "api-gateway", props: Record<string, any> = {}): TestResource {
    return dockerContainer(workload, "service", {
        image: "localhost/ai-trading/services:0.1.0",
        envs: [
            "LOG_LEVEL=info", "PORT=3001", `SERVICE_NAME=${workload}`,
            "POSTGRES_URL=postgresql://ai_trading_user:Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt@postgres:5432/ai_trading",
            "JWT_SECRET=" + "ab".repeat(64),
        ],
        ...props,
    });
}

export function dockerPostgres(props: Record<string, any> = {}): TestResource {
    return dockerContainer("postgres", "datastore", {
        user: "999:999",
        readOnly: false,
        envs: ["POSTGRES_DB=ai_trading", "POSTGRES_PASSWORD=Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt", "POSTGRES_USER=ai_trading_user"],
        ports: [{ internal: 5432, external: 5432, ip: "127.0.0.1", protocol: "tcp" }],
        volumes: [{ volumeName: "ai-trading-dev-postgres-data", containerPath: "/var/lib/postgresql/data" }],
        healthcheck: { tests: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"], interval: "10s", timeout: "5s", retries: 5, startPeriod: "30s" },
        memory: 1024,
        cpus: "1",
        ...props,
    });
}

export const NGINX_CONF = `# generated
worker_processes auto;
pid /tmp/nginx.pid;
events { worker_connections 1024; }
http {
  server_tokens off;
  upstream gateway { server api-gateway:3001 max_fails=3 fail_timeout=10s; }
  # Plain HTTP only ever redirects.
  server {
    listen 8080 default_server;
    server_name _;
    return 301 https://$host:8443$request_uri;
  }
  server {
    listen 8443 ssl default_server;
    http2 on;
    server_name localhost;
    ssl_certificate /etc/nginx/tls/tls.crt;
    ssl_certificate_key /etc/nginx/tls/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    add_header Strict-Transport-Security "max-age=63072000" always;
    location /api/ { proxy_pass http://gateway; }
  }
}
`;

/** `conf: null` uploads no nginx.conf. */
export function dockerNginx(conf: string | null = NGINX_CONF, props: Record<string, any> = {}): TestResource {
    return dockerContainer("nginx", "edge", {
        user: "33:33",
        ports: [
            { internal: 8080, external: 8080, ip: "127.0.0.1", protocol: "tcp" },
            { internal: 8443, external: 8443, ip: "127.0.0.1", protocol: "tcp" },
        ],
        uploads: conf === null ? [] : [
            { file: "/etc/nginx/nginx.conf", content: conf, permissions: "0444" },
            { file: "/etc/nginx/tls/tls.key", content: "-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n", permissions: "0400" },
        ],
        healthcheck: { tests: ["CMD", "nginx", "-t"], interval: "10s", timeout: "5s", retries: 3, startPeriod: "5s" },
        ...props,
    });
}

export const ALERT_RULES = `groups:
  - name: trading-platform
    rules:
      - alert: ServiceDown
        expr: "up == 0"
        for: 2m
        labels:
          severity: critical
      - alert: HighErrorRate
        expr: "sum(rate(http_request_duration_seconds_count{status_code=~\\"5..\\"}[5m])) > 0.05"
        for: 5m
`;

/** `rules: null` uploads no rule file. */
export function dockerPrometheus(rules: string | null = ALERT_RULES): TestResource {
    return dockerContainer("prometheus", "monitoring", {
        user: "65534:65534",
        ports: [{ internal: 9090, external: 9090, ip: "127.0.0.1", protocol: "tcp" }],
        uploads: [
            { file: "/etc/prometheus/prometheus.yml", content: "global:\n  scrape_interval: 15s\nrule_files:\n  - /etc/prometheus/rules/trading-alerts.yml\n" },
            ...(rules === null ? [] : [{ file: "/etc/prometheus/rules/trading-alerts.yml", content: rules }]),
        ],
        healthcheck: { tests: ["CMD", "wget", "-qO-", "http://127.0.0.1:9090/-/ready"], interval: "10s", timeout: "5s", retries: 3, startPeriod: "10s" },
    });
}

export function remoteImage(name: string): TestResource {
    return { type: "docker:index/remoteImage:RemoteImage", name: `image-${name.replace(/[^a-zA-Z0-9]+/g, "-")}`, props: { name, keepLocally: true } };
}

/** `text` written as the Dockerfile of a fresh directory; its absolute path (as the program passes: components/services.ts). */
export function writeDockerfile(text: string): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "policy-dockerfile-")), "Dockerfile");
    fs.writeFileSync(file, text);
    return file;
}

export function randomPassword(name: string, length = 44): TestResource {
    return { type: "random:index/randomPassword:RandomPassword", name, props: { length, special: false, minUpper: 4, minLower: 4, minNumeric: 4 } };
}

export function randomBytes(name: string, length = 64): TestResource {
    return { type: "random:index/randomBytes:RandomBytes", name, props: { length } };
}

/** A dev (Docker) stack that passes the pack under both configs, but for its local services image under prod.json (allowed-image-registries). */
export function devStack(): TestResource[] {
    return [
        randomPassword("trading-secrets-postgres"),
        randomBytes("trading-secrets-jwt"),
        remoteImage("postgres:16.4-bookworm"),
        // As the program declares each datastore volume (components/runtime/docker.ts): named, labelled with its workload.
        { type: "docker:index/volume:Volume", name: "postgres-data", props: { name: "ai-trading-dev-postgres-data", labels: [{ label: "trading.io/workload", value: "postgres" }] } },
        dockerPostgres({ ports: [] }),
        dockerService("api-gateway"),
        dockerNginx(),
        dockerPrometheus(),
    ];
}

// ------------------------------------------------------------------------------------ Kubernetes

export function container(name: string, port: number, extra: Record<string, any> = {}) {
    return {
        name,
        image: SERVICES_IMAGE,
        args: [name],
        env: [
            { name: "LOG_LEVEL", value: "info" },
            { name: "PORT", value: String(port) },
            { name: "SERVICE_NAME", value: name },
            { name: "POSTGRES_URL", valueFrom: { secretKeyRef: { name: `${name}-credentials`, key: "POSTGRES_URL" } } },
            { name: "JWT_SECRET", valueFrom: { secretKeyRef: { name: `${name}-credentials`, key: "JWT_SECRET" } } },
        ],
        ports: [{ containerPort: port, name: "http" }],
        livenessProbe: { httpGet: { path: "/health", port }, periodSeconds: 10 },
        readinessProbe: { httpGet: { path: "/ready", port }, periodSeconds: 10 },
        resources: { limits: { cpu: "250m", memory: "256Mi" }, requests: { cpu: "250m", memory: "256Mi" } },
        securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            privileged: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            seccompProfile: { type: "RuntimeDefault" },
        },
        volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
        ...extra,
    };
}

export function podSpec(containers: any[], extra: Record<string, any> = {}) {
    return {
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
        containers,
        volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
        ...extra,
    };
}

export function deployment(workload: string, port: number, opts: { replicas?: number; role?: string; container?: Record<string, any>; spec?: Record<string, any> } = {}): TestResource {
    const labels = k8sLabels(workload, opts.role ?? "service");
    return {
        type: "kubernetes:apps/v1:Deployment",
        name: `${workload}-deployment`,
        props: {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: workload, namespace: NS, labels },
            spec: {
                replicas: opts.replicas ?? 2,
                selector: { matchLabels: { "trading.io/workload": workload } },
                template: {
                    metadata: { labels },
                    spec: podSpec([container(workload, port, opts.container)], {
                        topologySpreadConstraints: [{
                            maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway",
                            labelSelector: { matchLabels: { "trading.io/workload": workload } },
                        }],
                        ...opts.spec,
                    }),
                },
            },
        },
    };
}

/** The same workload as a legacy ReplicationController (core/v1): its selector is a plain label map. */
export function replicationController(workload: string, port: number, opts: Parameters<typeof deployment>[2] = {}): TestResource {
    const d = deployment(workload, port, opts);
    return {
        type: "kubernetes:core/v1:ReplicationController",
        name: `${workload}-replicationcontroller`,
        props: { ...d.props, apiVersion: "v1", kind: "ReplicationController", spec: { ...d.props.spec, selector: { "trading.io/workload": workload } } },
    };
}

/**
 * A Deployment's pod template under every pod-bearing kind the pack walks (lib/rule.ts): the
 * Deployment itself, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and a
 * bare Pod, named `<workload>-<kind>`.
 */
export function asEveryPodKind(d: TestResource): TestResource[] {
    const p = d.props;
    const workload = p.metadata.name;
    const as = (type: string, props: Record<string, any>): TestResource => {
        const kind = type.split(":").pop()!;
        return { type, name: kind === "Deployment" ? d.name : `${workload}-${kind.toLowerCase()}`, props: { ...clone(props), kind } };
    };
    return [
        d,
        as("kubernetes:apps/v1:StatefulSet", { ...p, spec: { ...p.spec, serviceName: `${workload}-headless` } }),
        as("kubernetes:apps/v1:DaemonSet", { ...p, spec: { selector: p.spec.selector, template: p.spec.template } }),
        as("kubernetes:apps/v1:ReplicaSet", p),
        as("kubernetes:core/v1:ReplicationController", { ...p, apiVersion: "v1", spec: { ...p.spec, selector: p.spec.selector.matchLabels } }),
        as("kubernetes:batch/v1:Job", { ...p, apiVersion: "batch/v1", spec: { activeDeadlineSeconds: 3_600, template: p.spec.template } }),
        as("kubernetes:batch/v1:CronJob", { ...p, apiVersion: "batch/v1", spec: { schedule: "0 * * * *", jobTemplate: { spec: { activeDeadlineSeconds: 1_800, template: p.spec.template } } } }),
        as("kubernetes:core/v1:Pod", { apiVersion: "v1", metadata: p.metadata, spec: p.spec.template.spec }),
    ];
}

export function statefulSet(workload: string, role: string, image: string, port: number, uid: number, extra: Record<string, any> = {}): TestResource {
    const labels = k8sLabels(workload, role);
    const c = container(workload, port, {
        image,
        args: undefined,
        env: [{ name: `${workload.toUpperCase()}_PASSWORD`, valueFrom: { secretKeyRef: { name: `${workload}-credentials`, key: "password" } } }],
        securityContext: {
            allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, privileged: false, readOnlyRootFilesystem: false,
            runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, seccompProfile: { type: "RuntimeDefault" },
        },
        resources: { limits: { cpu: "1", memory: "1Gi" }, requests: { cpu: "500m", memory: "1Gi" } },
        livenessProbe: { exec: { command: ["sh", "-c", "true"] } },
        readinessProbe: { tcpSocket: { port } },
        volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, { name: "data", mountPath: "/var/lib/data" }],
        ...extra,
    });
    return {
        type: "kubernetes:apps/v1:StatefulSet",
        name: `${workload}-statefulset`,
        props: {
            apiVersion: "apps/v1",
            kind: "StatefulSet",
            metadata: { name: workload, namespace: NS, labels },
            spec: {
                replicas: 1,
                serviceName: `${workload}-headless`,
                selector: { matchLabels: { "trading.io/workload": workload } },
                volumeClaimTemplates: [{ metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: "standard", resources: { requests: { storage: "10Gi" } } } }],
                template: { metadata: { labels }, spec: podSpec([c], { securityContext: { fsGroup: uid, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } } }) },
            },
        },
    };
}

export function service(workload: string, role: string, port: number, type = "ClusterIP"): TestResource {
    return {
        type: "kubernetes:core/v1:Service",
        name: `${workload}-service`,
        props: {
            apiVersion: "v1", kind: "Service",
            metadata: { name: workload, namespace: NS, labels: k8sLabels(workload, role) },
            spec: { type, selector: { "trading.io/workload": workload }, ports: [{ name: "http", port, targetPort: port }] },
        },
    };
}

/** The headless Service a StatefulSet fixture names (spec.serviceName). */
export function headlessService(workload: string, role: string, port: number): TestResource {
    const svc = service(workload, role, port);
    svc.name = `${workload}-headless-service`;
    svc.props.metadata.name = `${workload}-headless`;
    svc.props.spec.clusterIP = "None";
    return svc;
}

export function networkPolicy(name: string, podSelector: Record<string, any>, policyTypes: string[], rules: { ingress?: any[]; egress?: any[] } = {}): TestResource {
    return {
        type: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        name: `${name}-netpol`,
        props: { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: NS }, spec: { podSelector, policyTypes, ...rules } },
    };
}

export function defaultDeny(): TestResource {
    return networkPolicy("default-deny", {}, ["Ingress", "Egress"]);
}

export function allowFrom(workload: string, clients: string[], port: number): TestResource {
    return networkPolicy(workload, { matchLabels: { "trading.io/workload": workload } }, ["Ingress", "Egress"], {
        // No clients: no rule at all (a rule whose `from` is empty admits every source).
        ingress: clients.length ? [{ from: clients.map((c) => ({ podSelector: { matchLabels: { "trading.io/workload": c } } })), ports: [{ port, protocol: "TCP" }] }] : [],
        // DNS in kube-system, as the program's allow-dns policy (a peer of every namespace would reach every pod of the cluster).
        egress: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }], ports: [{ port: 53, protocol: "UDP" }] }],
    });
}

export function pdb(workload: string, spec: Record<string, any> = { maxUnavailable: 1 }): TestResource {
    return {
        type: "kubernetes:policy/v1:PodDisruptionBudget",
        name: `${workload}-pdb`,
        props: { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: workload, namespace: NS }, spec: { selector: { matchLabels: { "trading.io/workload": workload } }, ...spec } },
    };
}

export function hpa(workload: string, minReplicas: number): TestResource {
    return {
        type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        name: `${workload}-hpa`,
        props: {
            apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", metadata: { name: workload, namespace: NS },
            spec: { minReplicas, maxReplicas: 6, scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: workload } },
        },
    };
}

export function backupCronJob(datastore: string, image: string, uid: number, extra: Record<string, any> = {}): TestResource {
    const workload = `${datastore}-backup`;
    const labels = k8sLabels(workload, "job", { "trading.io/backup-of": datastore });
    const c = container(workload, 0, {
        image, args: undefined, ports: [], livenessProbe: undefined, readinessProbe: undefined,
        env: [{ name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: `${workload}-credentials`, key: "password" } } }],
        securityContext: {
            allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true,
            runAsNonRoot: true, runAsUser: uid, seccompProfile: { type: "RuntimeDefault" },
        },
    });
    return {
        type: "kubernetes:batch/v1:CronJob",
        name: `${workload}-cronjob`,
        props: {
            apiVersion: "batch/v1", kind: "CronJob",
            metadata: { name: workload, namespace: NS, labels },
            spec: {
                schedule: "15 2 * * *", concurrencyPolicy: "Forbid",
                // A run's time limit, as the program sets it (BACKUP_RUN_TIMEOUT_SECONDS; policy job-active-deadlines).
                jobTemplate: { metadata: { labels }, spec: { activeDeadlineSeconds: 10_800, template: { metadata: { labels }, spec: podSpec([c], { restartPolicy: "OnFailure" }) } } },
                ...extra,
            },
        },
    };
}

export function rulesConfigMap(rules = ALERT_RULES): TestResource {
    return {
        type: "kubernetes:core/v1:ConfigMap",
        name: "prometheus-rules",
        props: {
            apiVersion: "v1", kind: "ConfigMap",
            metadata: { name: "prometheus-rules", namespace: NS, labels: k8sLabels("prometheus", "monitoring", { "trading.io/prometheus-rules": "true" }) },
            data: { "trading-alerts.yml": rules },
        },
    };
}

export function secret(name: string, stringData: Record<string, string>, data?: Record<string, string>): TestResource {
    return {
        type: "kubernetes:core/v1:Secret",
        name: `${name}-secret`,
        // Labelled with its workload, as the platform labels each <workload>-credentials (workload-secret-scope, session 45).
        props: {
            apiVersion: "v1", kind: "Secret", type: "Opaque", metadata: { name: `${name}-credentials`, namespace: NS, labels: { "trading.io/workload": name } },
            stringData, ...(data ? { data } : {}),
        },
    };
}

export function ingress(extra: { annotations?: Record<string, string>; tls?: any[]; backends?: string[] } = {}): TestResource {
    const backends = extra.backends ?? ["api-gateway"];
    return {
        type: "kubernetes:networking.k8s.io/v1:Ingress",
        name: "nginx-ingress",
        props: {
            apiVersion: "networking.k8s.io/v1", kind: "Ingress",
            metadata: {
                name: "ai-trading", namespace: NS, labels: { "trading.io/role": "edge", "trading.io/workload": "ingress" },
                annotations: extra.annotations ?? {
                    "cert-manager.io/cluster-issuer": "letsencrypt-prod",
                    "nginx.ingress.kubernetes.io/ssl-redirect": "true",
                },
            },
            spec: {
                ingressClassName: "nginx",
                tls: extra.tls ?? [{ hosts: ["trading.example.com"], secretName: "ai-trading-tls" }],
                rules: [{
                    host: "trading.example.com",
                    http: { paths: backends.map((b) => ({ path: `/${b}`, pathType: "Prefix", backend: { service: { name: b, port: { number: 3001 } } } })) },
                }],
            },
        },
    };
}

/** A prod (Kubernetes) stack that passes the pack under both configs, but for its registry image under dev.json (allowed-image-registries). */
export function prodStack(): TestResource[] {
    return [
        randomPassword("trading-secrets-postgres"),
        randomBytes("trading-secrets-jwt"),
        { type: "kubernetes:core/v1:Namespace", name: "namespace", props: { apiVersion: "v1", kind: "Namespace", metadata: { name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } },
        defaultDeny(),
        secret("api-gateway", { POSTGRES_URL: "postgresql://ai_trading_user:Q7mZr2LwX9pT4vNc8KdH3sYb6FgJ1aEuR5oWiMnV0xCt@postgres:5432/ai_trading" }),
        deployment("api-gateway", 3001),
        service("api-gateway", "service", 3001),
        pdb("api-gateway"),
        allowFrom("api-gateway", ["prometheus"], 3001),
        statefulSet("postgres", "datastore", "postgres:16.4-bookworm", 5432, 999),
        service("postgres", "datastore", 5432),
        headlessService("postgres", "datastore", 5432),
        allowFrom("postgres", ["api-gateway", "postgres-backup"], 5432),
        backupCronJob("postgres", "postgres:16.4-bookworm", 999),
        statefulSet("clickhouse", "datastore", "clickhouse/clickhouse-server:24.8.4.13", 8123, 101),
        headlessService("clickhouse", "datastore", 8123),
        allowFrom("clickhouse", ["api-gateway", "clickhouse-backup"], 8123),
        backupCronJob("clickhouse", "clickhouse/clickhouse-server:24.8.4.13", 101),
        statefulSet("prometheus", "monitoring", "prom/prometheus:v2.54.1", 9090, 65534),
        headlessService("prometheus", "monitoring", 9090),
        allowFrom("prometheus", [], 9090),
        rulesConfigMap(),
        ingress(),
    ];
}

/** The resource named `name` in a list (throws when missing). */
export function find(resources: TestResource[], name: string): TestResource {
    const r = resources.find((x) => x.name === name);
    if (!r) throw new Error(`no fixture ${name}`);
    return r;
}

/** `resources` with the one named `name` replaced by `change(copy)`. */
export function replace(resources: TestResource[], name: string, change: (props: any) => void): TestResource[] {
    return resources.map((r) => (r.name === name ? edit(r, change) : r));
}
