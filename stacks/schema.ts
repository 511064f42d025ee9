/**
 * The stack configuration schema: every `trading:*` key with its type, default, constraints and
 * description, as TypeBox schemas (the library the services already use for their environment:
 * JSON Schema underneath, static types from the same object, maintained, no dependencies).
 *
 * One source for three things: the defaults the parser applies (stacks/config.ts), the checks it
 * runs on each raw value, and the declarations of `Pulumi.yaml` (`pulumiDeclarations()`, compared
 * with the file by tests/unit/config.test.ts). Cross-field rules stay in the parser.
 */
import { Kind, TSchema, Type } from "@sinclair/typebox";
import { DATA_COMPONENTS, DataComponent } from "../catalog/datastores";
import { MAX_PIDS_LIMIT, POSTGRES_MEMORY_GI } from "../catalog/sizing";

/**
 * The most characters a string key holds unless it names its own bound (stacks/config.ts refuses more, for
 * every key): no setting needs more (the longest, trustedProxies, lists the edge's few ranges), and a value
 * of 100,000 characters went whole into an environment variable, a label or a command line.
 */
export const STRING_MAX_LENGTH = 1024;
/** Keys whose default depends on the target (or that are optional) are declared with "" in Pulumi.yaml. */
const str = (description: string, def = "", maxLength = STRING_MAX_LENGTH) => Type.String({ description, default: def, maxLength });
const int = (description: string, def: number, minimum: number, maximum: number) => Type.Integer({ description, default: def, minimum, maximum });
const bool = (description: string, def: boolean) => Type.Boolean({ description, default: def });
function oneOf<const T extends readonly string[]>(values: T, description: string, def?: T[number] | "") {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    { description, ...(def !== undefined ? { default: def } : {}) },
  );
}

const storeNames: Record<DataComponent, { title: string; enabled: string; storageGi: number; on: boolean }> = {
  postgres: { title: "PostgreSQL", enabled: "Deploy PostgreSQL", storageGi: 20, on: true },
  dragonfly: { title: "DragonflyDB", enabled: "Deploy DragonflyDB (Redis protocol)", storageGi: 5, on: true },
  clickhouse: { title: "ClickHouse", enabled: "Deploy ClickHouse", storageGi: 50, on: true },
  weaviate: { title: "Weaviate", enabled: "Deploy Weaviate", storageGi: 20, on: true },
  arangodb: { title: "ArangoDB", enabled: "Deploy ArangoDB", storageGi: 10, on: true },
  redpanda: { title: "Redpanda", enabled: "Deploy Redpanda (Kafka protocol)", storageGi: 20, on: true },
  // The guide keeps the legacy Redis for compatibility only: off unless asked for.
  redis: { title: "legacy Redis", enabled: "Deploy the legacy Redis (compatibility only)", storageGi: 2, on: false },
};
const capitalised = (s: string) => s[0].toUpperCase() + s.slice(1);

const datastoreKeys = Object.fromEntries(
  DATA_COMPONENTS.flatMap((d) => {
    const n = storeNames[d];
    return [
      [`${d}Enabled`, bool(n.enabled, n.on)],
      [`${d}Image`, str(`Override of the ${n.title} image (pinned tag)`)],
      [`${d}StorageGi`, int(`${capitalised(n.title)} volume size (GiB)`, n.storageGi, 1, 16384)],
    ];
  }),
) as Record<`${DataComponent}${"Enabled" | "Image" | "StorageGi"}`, TSchema>;

export const stackConfigSchema = Type.Object({
  target: oneOf(["docker", "kubernetes"], "Deployment target: docker (a local engine) or kubernetes (a cluster)"),
  imageSource: oneOf(
    ["local", "upstream"],
    "local (images built from Debian by scripts/images/build-images.sh) or upstream (pinned vendor images)",
    "",
  ),
  servicesImageTag: str("Tag of the services image built from services/ (never latest)", "0.1.0"),
  // The pushed images are <registry>/ai-trading-services and -trainer: a repository name is at most 255 characters (catalog/images.ts).
  registry: str("Registry/repository prefix the services image is pushed to (required on kubernetes)", "", 255 - "/ai-trading-services".length),
  // Logins: SASL's authentication identity (RFC 4616) is bounded at 255 octets, and no registry takes longer.
  registryUsername: str("Registry login for the push (password with 'pulumi config set --secret trading:registryPassword')", "", 255),
  replicas: int(
    "Replicas of every stateless service, and its autoscaler's floor on kubernetes (capped by the catalog's maximum); 0 means the target's default (1 on docker, the catalog's 2 on kubernetes). 1 on kubernetes suits a single-node cluster only: the policy pack rejects it on prod",
    0,
    0,
    50,
  ),
  // A map: project config can declare only scalars and arrays, so Pulumi.yaml leaves it out.
  serviceReplicas: Type.Record(Type.String(), Type.Integer({ minimum: 1 }), { description: "Replicas per service, e.g. {\"api-gateway\": 4}", declared: false }),
  disabledServices: str("Comma-separated catalog services not to deploy"),
  // A map too (service -> variable -> integer): Pulumi.yaml leaves it out. The variables another part of the
  // platform depends on (catalog/service-settings.ts), judged across services by stacks/service-settings.ts.
  serviceSettings: Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer()), {
    description: "Service variables the stack sets, e.g. {\"user-management\": {\"ACCESS_TOKEN_TTL_S\": 600}}: those of catalog/service-settings.ts and POSTGRES_POOL_MAX",
    declared: false,
  }),
  ...datastoreKeys,
  postgresMaxConnections: int(
    "PostgreSQL's max_connections; 0 (the default) sizes it to what the stack can open at once (every pool of every replica, the autoscaler's most on kubernetes, the jobs, 10 for admins); a value below that, or above what postgresMemoryGi holds, is refused",
    0,
    0,
    10_000,
  ),
  postgresMemoryGi: int(
    "PostgreSQL's memory limit (GiB), on both targets; a max_connections whose memory does not fit it is refused (each connection a backend's 6 MiB and a work_mem of 4 MiB, with shared_buffers, autovacuum and the server's processes)",
    POSTGRES_MEMORY_GI,
    1,
    1024,
  ),
  prometheusEnabled: bool("Deploy Prometheus", true),
  grafanaEnabled: bool("Deploy Grafana", true),
  prometheusRetentionDays: int("Prometheus retention in days", 15, 1, 3650),
  // Bounds: stacks/config.ts RATE_LIMIT (the README's Stack configuration states them).
  rateLimitWindowMs: int("Gateway rate-limit window (ms): 1000 to 3600000 (1 s to 1 h)", 900_000, 1_000, 3_600_000),
  trustedProxies: str(
    "Addresses/CIDRs allowed to set X-Forwarded-For at the gateway (its TRUST_PROXY): the edge proxy, IPv4 /16 or IPv6 /48 or narrower, IPv4 inside 10/8, 172.16/12, 192.168/16, 100.64/10 or loopback, IPv6 inside fc00::/7, link-local or loopback unless trustGlobalIPv6Proxies (the services refuse the same TRUST_PROXY at start). Each range once (10.0.0.1 and 10.0.0.1/32 are one), as its network (10.0.0.0/16, not 10.0.0.1/16), its prefix without leading zeros (/16, not /016). Default: dockerSubnet on docker, 10.244.0.0/16 (the pod network the ingress controller runs in) on kubernetes. On docker the list covers dockerSubnet (the engine gives the edge its address there); on kubernetes it holds more than loopback and link-local (the ingress controller's pods send from the pod network)",
  ),
  trustGlobalIPv6Proxies: bool("trustedProxies may hold global unicast IPv6 (2000::/3): the ingress controller's pod network when it is of public addresses (EKS IPv6, dual-stack clusters); without it only unique local fc00::/7, link-local and loopback IPv6 are taken", false),
  dockerSubnet: str("Docker: subnet of the private network, inside 10/8, 172.16/12 or 192.168/16 and /16 or narrower (it is the gateway's default trustedProxies on docker), as its network (172.28.0.0/24, not 172.28.0.1/24), its prefix without leading zeros (/24, not /024), wide enough for the stack's containers (dev runs 31: a /26 or wider; the stack counts them)", "172.28.0.0/24"),
  rateLimitMaxRequests: int("Requests per window per user and per IP: 10 to 1000000, on average at most 1000 a second and at least one a minute", 100, 10, 1_000_000),
  tradingMode: oneOf(["paper", "live"], "paper (simulated exchange) or live (Binance; needs binanceApiKey/binanceSecretKey secrets)", "paper"),
  marketDataSource: oneOf(["synthetic", "replay", "binance"], "synthetic, replay or binance", "synthetic"),
  httpPort: int("Docker: host port of HTTP (redirects only), bound to 127.0.0.1", 8080, 1, 65535),
  httpsPort: int("Docker: host port of HTTPS, bound to 127.0.0.1", 8443, 1, 65535),
  publishAdminPorts: bool("Docker: publish datastore, Prometheus and Grafana ports on the admin bind address (ignored on kubernetes)", true),
  // Threads count too (the kernel's pids controller counts tasks): the defaults leave the largest
  // measured peak of each kind far below the limit (policies/README.md) and still stop a fork bomb.
  // At most the policy pack's default maxPidsLimit (catalog/sizing.ts MAX_PIDS_LIMIT): above it the pack
  // refuses the container after the preview, and the limit no longer bounds a fork bomb on the host.
  dockerPidsLimitStateless: int(`Docker: most processes and threads of each stateless container (services, the Nginx edge); 16 to ${MAX_PIDS_LIMIT}`, 512, 16, MAX_PIDS_LIMIT),
  dockerPidsLimitStateful: int(`Docker: most processes and threads of each stateful container (datastores, Prometheus, Grafana); 16 to ${MAX_PIDS_LIMIT}`, 4096, 16, MAX_PIDS_LIMIT),
  dockerPidsLimitJob: int(`Docker: most processes and threads of each one-shot job container (migrations); 16 to ${MAX_PIDS_LIMIT}`, 256, 16, MAX_PIDS_LIMIT),
  adminBindAddress: str(
    "Docker: host address datastore, Prometheus and Grafana ports bind to: loopback or a private or VPN interface's address (10/8, 172.16/12, 192.168/16, 100.64/10), never 0.0.0.0 or a public one; the policy pack reports any address but loopback (and blocks it under prod.json)",
    "127.0.0.1",
  ),
  exposeDatastores: bool("Kubernetes: LoadBalancer Services for the datastores; refused on every stack but dev (dev, dev-*), and by the policy pack under prod.json", false),
  namespace: str("Kubernetes namespace", "ai-trading"),
  storageClass: str("Kubernetes storage class of the volumes (cluster default when unset)"),
  ingressHost: str("Public host name of the Ingress (Docker: the edge's server and certificate name); a DNS name, never an IP address, on kubernetes; required there with certIssuer, and a public one (no single label, .local, .internal, .test, ...) with a public ACME certIssuer", "localhost"),
  ingressClass: str("Ingress class", "nginx"),
  tlsSecretName: str("TLS secret of the Ingress: an existing one, or created by the stack from the tlsCertificate/tlsPrivateKey secrets"),
  certIssuer: str("cert-manager ClusterIssuer that issues the Ingress certificate"),
  ingressControllerNamespace: str("Namespace of the ingress controller (the only peer allowed to reach the gateway)", "ingress-nginx"),
  ingressControllerPodLabels: str(
    "Labels of the ingress controller's pods, e.g. app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller: only those pods of ingressControllerNamespace may reach the gateway (unset: every pod there); required when that namespace is default or kube-*",
  ),
  traefikMiddlewares: bool(
    "Kubernetes with a Traefik ingress class: the controller reads traefik.io Middleware objects (its kubernetescrd provider and their CRDs): the Ingress's routers then send Traefik's own 502 to edge-errors (its errors middleware); off, only the catch-all Ingress answers Traefik's 404 and a gateway without ready pods",
    false,
  ),
  edgeErrorsAnyHost: bool(
    "Kubernetes with a Traefik ingress class whose controller is the platform's own (the local cluster): the catch-all Ingress also takes every Host no Ingress names (a host-less rule to edge-errors), which get the platform's JSON 404 instead of Traefik's plain one; the stack's policy config must allow it (ingress-hosts catchAllService)",
    false,
  ),
  imagePullPolicy: oneOf(
    ["Always", "IfNotPresent", "Never"],
    "Always, IfNotPresent or Never (images imported into the nodes, e.g. the local cluster of scripts/cluster/)",
    "IfNotPresent",
  ),
  cpuRequestRatio: str("CPU request as a fraction of the CPU limit, 0.01 to 1; 1 = Guaranteed QoS", "1"),
  memoryRequestRatio: str("Memory request as a fraction of the memory limit, 0.01 to 1; 1 = requests equal limits", "1"),
  renderYamlTo: str("Render Kubernetes manifests to this folder instead of applying them (no cluster): a folder under rendered/ (git-ignored) inside the project, since Secrets are plain text there"),
  backupSchedule: str("Cron schedule (UTC) of the PostgreSQL and ClickHouse backups (kubernetes): ticks at least 1 h apart (a run is cut to half the gap and needs 30 min), day-of-week 0-6, each value of a field once (not '15,15' nor '1-5,3')", "15 2 * * *"),
  mlRetrainSchedule: str("Cron schedule (UTC) of ml-predictor's retraining job, on both targets: ticks at least 20 min apart (a run is cut to half the gap and needs 10 min), day-of-week 0-6, each value of a field once (not '15,15' nor '1-5,3')", "30 3 * * *"),
  logLevel: oneOf(["fatal", "error", "warn", "info", "debug", "trace"], "Service log level; debug and trace are refused on kubernetes off dev stacks unless allowVerboseLogs is true", "info"),
  allowVerboseLogs: bool("Kubernetes: accept logLevel debug or trace on a stack other than dev (verbose logs carry request detail the info level leaves out); the policy pack also wants the workloads listed in no-insecure-runtime-flags' verboseLogWorkloads", false),
  smtpHost: str("SMTP relay of notification-service (e-mail is off without it; password: pulumi config set --secret trading:smtpPassword). Kubernetes opens its port to public addresses; a relay in a private range must be given by its IP address (then only that address is opened)"),
  smtpPort: int("SMTP relay port (STARTTLS required; 465 = implicit TLS); never another protocol's (SSH 22, DNS 53, IMAP 143, ...: catalog/addresses.ts)", 587, 1, 65535),
  smtpUsername: str("SMTP login of notification-service", "", 255),
  // The From header's line: RFC 5322 bounds a line at 998 characters, "From: " included.
  smtpFrom: str("Sender of notification e-mails, e.g. 'AI Trading <alerts@example.com>'", "AI Trading <notifications@localhost>", 998 - "From: ".length),
  notifyWebhookPorts: str(
    "Comma-separated TCP ports a user's webhook URL may name (notification-service's NOTIFY_WEBHOOK_PORTS; Kubernetes opens them to public addresses): 1 to 65535, none of the WHATWG Fetch standard's bad ports (SSH, SMTP, IMAP, ...: catalog/addresses.ts)",
    "443",
  ),
});

export type ConfigKey = keyof typeof stackConfigSchema.properties;

/** Every key the program reads, so the loader can fetch them all from `pulumi.Config`. */
export const configKeys = Object.keys(stackConfigSchema.properties) as readonly ConfigKey[];

export function keySchema(key: string): TSchema {
  const schema = (stackConfigSchema.properties as Record<string, TSchema>)[key];
  if (!schema) throw new Error(`stacks/schema.ts declares no key '${key}'`);
  return schema;
}

/** Allowed values of an enumerated key. */
export function allowedValues(key: string): string[] {
  const schema = keySchema(key);
  return (schema.anyOf as TSchema[] | undefined)?.map((s) => String(s.const)) ?? [];
}

export interface PulumiDeclaration {
  type: "string" | "integer" | "boolean";
  default?: string | number | boolean;
  description: string;
}

/** The `config:` block of Pulumi.yaml: one declaration per scalar key, the CLI checks types before the program runs. */
export function pulumiDeclarations(namespace = "trading"): Record<string, PulumiDeclaration> {
  const out: Record<string, PulumiDeclaration> = {};
  for (const [key, schema] of Object.entries(stackConfigSchema.properties as Record<string, TSchema>)) {
    if (schema.declared === false) continue;
    const kind = schema[Kind] as string;
    const type = kind === "Integer" ? "integer" : kind === "Boolean" ? "boolean" : "string";
    out[`${namespace}:${key}`] = { type, ...(schema.default !== undefined ? { default: schema.default } : {}), description: schema.description ?? "" };
  }
  return out;
}
