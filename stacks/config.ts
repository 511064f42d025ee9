/**
 * Typed stack configuration.
 *
 * `stacks/schema.ts` states every key once (TypeBox: type, default, bounds, description);
 * `Pulumi.yaml` declares the same (checked by tests/unit/config.test.ts) so the CLI rejects a wrong
 * type before the program runs. This module is the second line: it checks each raw value against
 * its schema, applies the schema's defaults, turns them into one typed `StackConfig`, applies
 * cross-field rules (a service whose datastore is off, live trading on anything but Binance's
 * market data, a Kubernetes stack without a registry) and fails with the key and the stack in the
 * message. `checkSecretConfig` applies the rules that need to know which secrets are set.
 *
 * `parseStackConfig` is pure (strings in, object out) so tests exercise it without an engine.
 */
import { isIP } from "node:net";
import { realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { catalog, DATA_COMPONENTS, DataComponent, ServiceDefinition, ServiceScaling, sizingOf } from "../catalog";
import { CLOUD_METADATA_ADDRESSES, FETCH_BAD_PORTS, hostBitsNetwork, rangeCovers, INTERNAL_SERVICE_PORTS, ipv6ProxyScope, isIPv4MappedIPv6, nonProxyIPv4, PROXY_IPV4_RANGES, PROXY_IPV6_RANGES, repeatedProxyRange, smtpPortProblem, TRUSTED_PROXY_MIN_PREFIX, widerThanEdgeProxy, zeroPaddedPrefix } from "../catalog/addresses";
import { MAX_PIDS_LIMIT } from "../catalog/sizing";
import { isTraefikClass } from "../catalog/edge";
import { guideSecretsIn, isWeakValue } from "../catalog/credentials";
import { FLOATING_TAGS, imageReferenceProblem, isPinnedBuildTag, parseImageRef, unpinnedReason } from "../catalog/images";
import { serverBuildOf } from "./images";
import { GAP_SAMPLE_DAYS, tickGaps, type TickGaps } from "./cron-gaps";
import { crossServiceProblem, postgresConnectionNeed, postgresMemoryExcess, postgresPoolDefaults, serviceSettingsProblem, type ServiceSettings } from "./service-settings";
import { allowedValues, configKeys as schemaKeys, keySchema } from "./schema";
import { didYouMean, nearestName } from "./nearest";
import { escapeUnshowable, UNSHOWABLE } from "./unshowable";

export const CONFIG_NAMESPACE = "trading";

export type Target = "docker" | "kubernetes";
export type ImageSource = "local" | "upstream";
export type ImagePullPolicy = "Always" | "IfNotPresent" | "Never";
export type { DataComponent };
/** Every stateful component a stack can switch on or off (catalog/datastores.ts). */
export const dataComponents: readonly DataComponent[] = DATA_COMPONENTS;

export interface DatastoreConfig {
  enabled: boolean;
  /** Image reference override; empty means the pinned default for the image source. */
  image?: string;
  /** Persistent volume size. */
  storageGi: number;
}

export interface StackConfig {
  stack: string;
  target: Target;
  imageSource: ImageSource;
  /** Tag of the services image built from `services/`. */
  servicesImageTag: string;
  /** Registry the services image is pushed to (Kubernetes); empty on Docker. */
  registry?: string;
  /** Login for the push; the password is the secret `registryPassword`. */
  registryUsername?: string;
  datastores: Record<DataComponent, DatastoreConfig>;
  monitoring: { prometheus: boolean; grafana: boolean; retentionDays: number };
  /** Replicas of every stateless service unless overridden per service. */
  serviceReplicas: Record<string, number>;
  /** Services deployed: the catalog minus those switched off or missing a required datastore. */
  services: ServiceDefinition[];
  /**
   * Service variables the stack sets (trading:serviceSettings), by service: only those set, passed in
   * the service's environment; checked across services (stacks/service-settings.ts).
   */
  serviceSettings: ServiceSettings;
  /** PostgreSQL's max_connections: trading:postgresMaxConnections, else what the stack can open at once. */
  postgresMaxConnections: number;
  /**
   * POSTGRES_POOL_MAX passed where serviceSettings sets none: on Kubernetes each horizontally scaled
   * PostgreSQL user's replica's (catalog/sizing.ts KUBERNETES_REPLICA_POSTGRES_POOL); empty on Docker.
   */
  postgresPoolDefaults: Record<string, number>;
  /** PostgreSQL's memory limit in GiB (trading:postgresMemoryGi), which its max_connections must fit. */
  postgresMemoryGi: number;
  rateLimit: { windowMs: number; maxRequests: number };
  /** The gateway's TRUST_PROXY: the edge proxy's addresses/CIDRs (validated), comma-separated. */
  trustedProxies: string;
  /** trustedProxies may hold global unicast IPv6 (the gateway's TRUST_PROXY_GLOBAL_IPV6): an IPv6 pod network of public addresses. */
  trustGlobalIPv6Proxies: boolean;
  trading: { mode: "paper" | "live"; marketDataSource: "synthetic" | "replay" | "binance" };
  docker: {
    httpPort: number;
    httpsPort: number;
    publishAdminPorts: boolean;
    /** Host address datastore, Prometheus and Grafana ports bind to (a VPN interface, say). */
    adminBindAddress: string;
    /** Subnet of the private network (IPv4 CIDR). */
    subnet: string;
    /** PID limit of each container (HostConfig.PidsLimit) by workload kind. */
    pidsLimits: { stateless: number; stateful: number; job: number };
  };
  kubernetes: {
    namespace: string;
    storageClass?: string;
    ingressHost: string;
    ingressClass: string;
    tlsSecretName?: string;
    certIssuer?: string;
    /** Namespace of the ingress controller, the only one allowed to reach the gateway. */
    ingressControllerNamespace: string;
    /** Labels of the ingress controller's pods: with them, only those pods of its namespace reach the gateway. */
    ingressControllerPodLabels?: Record<string, string>;
    /** Traefik reads traefik.io Middlewares: the errors middleware goes on the Ingress's routers. */
    traefikMiddlewares: boolean;
    /** The Traefik catch-all also takes every Host no Ingress names (a host-less rule to edge-errors): a controller of the platform's own. */
    edgeErrorsAnyHost: boolean;
    /** Pull policy of every container; Never for images imported into the nodes (local cluster). */
    imagePullPolicy: ImagePullPolicy;
    /** CPU request = this fraction of the CPU limit (1 = Guaranteed QoS; less lets a small node schedule the platform). */
    cpuRequestRatio: number;
    /** Memory request = this fraction of the memory limit (1 = requests equal limits; less lets a small node schedule the platform). */
    memoryRequestRatio: number;
    /** Write manifests to this folder instead of talking to a cluster (CI, offline review). */
    renderYamlTo?: string;
    backupSchedule: string;
    /** LoadBalancer Services for the datastores; the policy pack rejects it on prod. */
    exposeDatastores: boolean;
  };
  /**
   * Cron expression (five fields, UTC) of each deployed service's scheduled job, by the job's
   * configuration key (catalog `scheduledJob.scheduleKey`, e.g. mlRetrainSchedule).
   */
  jobSchedules: Record<string, string>;
  logLevel: string;
  /** notification-service's SMTP relay (e-mail off without a host). */
  smtp: { host?: string; port: number; username?: string; from: string };
  /** The ports a user's webhook URL may name (notification-service's NOTIFY_WEBHOOK_PORTS), in the order given. */
  notifyWebhookPorts: number[];
}

/** A configuration problem, reported with the key and the stack so the user can fix it. */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly stack: string,
    problem: string,
    /** The key's namespace: the project's, or another the stack set a key in (checkConfigKeys). */
    readonly namespace: string = CONFIG_NAMESPACE,
  ) {
    super(`Invalid configuration ${namespace}:${key} on stack '${stack}': ${problem}`);
    this.name = "ConfigError";
  }
}

const SHOWN_MAX = 80;

/**
 * A raw value as an error message shows it: in quotes, with control characters, lone surrogates and
 * bidirectional controls escaped as \uXXXX (a terminal would hide them, or reorder the text around
 * them, so the user would not see what is wrong), and at most 80 characters of it (a value of
 * 100,000 characters made a message of 100,000).
 */
export function shown(raw: string): string {
  // A URL's password is never echoed (the Reader refuses such values before any rule shows one; this is the second net).
  const value = raw.replace(URL_PASSWORD_MASK, "$1:***@");
  const head = value.length > SHOWN_MAX ? value.slice(0, SHOWN_MAX) : value;
  const escaped = escapeUnshowable(head);
  return value.length > SHOWN_MAX ? `'${escaped}...' (${value.length} characters)` : `'${escaped}'`;
}

/** Raw values as Pulumi returns them (`config.get`), keyed without the namespace. */
export type RawConfig = Record<string, string | undefined>;

class Reader {
  constructor(
    private readonly raw: RawConfig,
    readonly stack: string,
  ) {}

  /**
   * The raw value, else the schema's default; undefined when neither is set (an empty default means
   * unset). No key has a use for a control or invisible character, and one would reach a provider
   * (a NUL in an env value or a path fails deep inside it), so any is refused here, for every key.
   */
  string(key: string): string | undefined {
    const value = this.text(key);
    // A YAML object or list set where a single value belongs reaches the program as JSON text.
    if (value !== undefined && /^[[{]/.test(value) && isStructured(value)) {
      // The comma-separated keys take a list as one text: a YAML list is the natural slip there, so the text meant is shown.
      const items: unknown = JSON.parse(value);
      const asText = COMMA_SEPARATED_KEYS.includes(key) && Array.isArray(items) && items.length > 0 && items.every((i) => typeof i === "string" || typeof i === "number") ? items.join(",") : undefined;
      throw new ConfigError(
        key,
        this.stack,
        asText !== undefined
          ? `must be one comma-separated text, got a YAML/JSON list ${shown(value)}: write it as ${shown(asText)}`
          : `must be a single value, got a YAML/JSON object or list ${shown(value)}`,
      );
    }
    return value;
  }

  /** `string` without the single-value check: the text of a structured key (serviceReplicas). */
  private text(key: string): string | undefined {
    const value = this.raw[key];
    // First, before any rule echoes part of the value: a credential pasted into a setting sits in plain text in
    // Pulumi.<stack>.yaml (and git), and a refusal quoting it would print it too.
    const credential = value !== undefined ? credentialShapeIn(value) : undefined;
    if (credential !== undefined) {
      throw new ConfigError(
        key,
        this.stack,
        `holds what looks like a credential (${credential}), which would sit in plain text in the stack's configuration: no setting takes one; credentials go in the secrets (pulumi config set --secret, the README's Stack configuration), and one pasted here should be revoked; the value is not shown here`,
      );
    }
    if (value !== undefined && new RegExp(UNSHOWABLE.source).test(value)) {
      throw new ConfigError(key, this.stack, `must not contain control or invisible characters, got ${shown(value)}`);
    }
    // Each string key's bound is its schema's (stacks/schema.ts: STRING_MAX_LENGTH unless the key names its own).
    const maxLength = keySchema(key).maxLength;
    if (value !== undefined && typeof maxLength === "number" && value.trim().length > maxLength) {
      throw new ConfigError(key, this.stack, `must be at most ${maxLength} characters, got ${shown(value.trim())}`);
    }
    // No setting is a URL with a login: a password there sits readable in Pulumi.<stack>.yaml (and git), so it is refused, never echoed.
    if (value !== undefined && URL_WITH_PASSWORD.test(value)) {
      throw new ConfigError(
        key,
        this.stack,
        `holds a URL with a password (scheme://user:password@...), which would sit in plain text in the stack's configuration; credentials go in the secrets (pulumi config set --secret, the README's Stack configuration), the password is not shown here`,
      );
    }
    this.refuseBlank(key);
    if (value !== undefined && value.trim() !== "") return value.trim();
    const fallback = keySchema(key).default;
    return typeof fallback === "string" && fallback !== "" ? fallback : undefined;
  }

  /**
   * A key set blank (`pulumi config set trading:httpPort ""`, a YAML `key:` with no value) where the schema
   * has a default: the CLI hands the program a declared default for a key the stack does not set, so a blank
   * value is the stack's own, and taking the default for it would replace what the operator meant without a
   * word (the services refuse the same for their variables). Keys whose default is empty are optional: blank is unset.
   */
  private refuseBlank(key: string): void {
    const value = this.raw[key];
    const fallback = keySchema(key).default;
    if (value === undefined || value.trim() !== "" || fallback === undefined || fallback === "") return;
    throw new ConfigError(
      key,
      this.stack,
      `is set but blank: give it a value, or remove it for its default, ${JSON.stringify(fallback)} (pulumi config rm ${CONFIG_NAMESPACE}:${key})`,
    );
  }

  required(key: string): string {
    const value = this.string(key);
    if (value === undefined) {
      throw new ConfigError(key, this.stack, `is required (set it with 'pulumi config set ${CONFIG_NAMESPACE}:${key} <value>')`);
    }
    return value;
  }

  /** One of the schema's values; `fallback` for keys whose default depends on other keys. */
  oneOf<T extends string>(key: string, fallback?: T): T {
    const allowed = allowedValues(key);
    const value = this.string(key) ?? fallback;
    if (value === undefined) {
      throw new ConfigError(key, this.stack, `is required, one of ${allowed.join(", ")}`);
    }
    if (!Value.Check(keySchema(key), value)) {
      throw new ConfigError(key, this.stack, `must be one of ${allowed.join(", ")}, got ${shown(value)}${caseHint(value, allowed)}`);
    }
    return value as T;
  }

  boolean(key: string): boolean {
    const value = this.string(key);
    if (value === undefined) return keySchema(key).default as boolean;
    if (value === "true") return true;
    if (value === "false") return false;
    throw new ConfigError(key, this.stack, `must be true or false, got ${shown(value)}${caseHint(value, ["true", "false"])}`);
  }

  /** An integer within the schema's bounds; `boundNote` says where the bounds come from, in the refusal. */
  integer(key: string, boundNote?: string): number {
    const schema = keySchema(key);
    this.refuseBlank(key);
    const value = this.raw[key]?.trim() || undefined;
    if (value === undefined) return schema.default as number;
    if (!/^-?\d+$/.test(value)) {
      throw new ConfigError(key, this.stack, `must be an integer, got ${shown(value)}${unitHint(key, value)}`);
    }
    if (hasLeadingZeros(value)) {
      throw new ConfigError(key, this.stack, `must be an integer ${WITHOUT_LEADING_ZEROS}, got ${shown(value)}`);
    }
    const n = Number(value);
    if (!Value.Check(schema, n)) {
      throw new ConfigError(key, this.stack, `must be between ${schema.minimum} and ${schema.maximum}${boundNote ? ` (${boundNote})` : ""}, got ${n}`);
    }
    return n;
  }

  /** A fraction in (0, 1], written as a decimal ("0.05", ".5", "1"). */
  ratio(key: string): number {
    const value = this.required(key);
    const n = Number(value);
    if (!/^\d*\.?\d+$/.test(value) || !(n > 0 && n <= 1)) {
      throw new ConfigError(key, this.stack, `must be a number greater than 0 and at most 1, got ${shown(value)}`);
    }
    if (hasLeadingZeros(value)) {
      throw new ConfigError(key, this.stack, `must be a number ${WITHOUT_LEADING_ZEROS}, got ${shown(value)}`);
    }
    // The CPU autoscaler's target is set against the request (70 % of the limit, over the ratio): at 1e-9 it passes
    // the API server's int32, and the HorizontalPodAutoscaler would be refused after the preview; below a hundredth no
    // request means anything (a millicore of a core).
    if (n < MIN_REQUEST_RATIO) {
      throw new ConfigError(key, this.stack, `must be at least ${MIN_REQUEST_RATIO} (a request a hundredth of the limit; below it the autoscaler's target, set against the request, stops meaning anything), got ${shown(value)}`);
    }
    return n;
  }

  object(key: string): Record<string, unknown> | undefined {
    const value = this.text(key);
    if (value === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new ConfigError(key, this.stack, `must be a YAML/JSON object, got ${shown(value)}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ConfigError(key, this.stack, "must be an object");
    }
    const repeated = repeatedJsonName(value);
    if (repeated !== undefined) {
      const within = repeated.within.length > 0 ? ` in ${repeated.within.map(shown).join(" > ")}` : "";
      throw new ConfigError(
        key,
        this.stack,
        `names ${shown(repeated.name)} twice${within}: JSON keeps only the last value of a repeated name, so the other would be dropped without a word; give each name once`,
      );
    }
    return parsed as Record<string, unknown>;
  }
}

/**
 * Credentials by their issuers' published shapes (a PEM private key, GitHub, GitLab, Slack, npm, Stripe, AWS and
 * Google keys, a Telegram bot token, a signed JWT): none is any setting's value (a login, a host, a name, a port),
 * so one found in a plain setting was pasted into the wrong key (the registry's token into registryUsername, say).
 * Each pattern is a literal prefix and one character class, matched in linear time on a value of any length.
 */
const CREDENTIAL_SHAPES: readonly (readonly [RegExp, string])[] = [
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/, "a PEM private key"],
  [/(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/, "a GitHub token"],
  [/(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,}/, "a GitLab token"],
  [/(?<![A-Za-z0-9_])xox[abposr]-[A-Za-z0-9-]{10,}/, "a Slack token"],
  [/(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}/, "an npm token"],
  [/(?<![A-Za-z0-9_])((sk|rk)_(live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{16,})/, "a card processor's (Stripe) key or webhook secret"],
  [/(?<![A-Za-z0-9])(AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])/, "an AWS access key ID"],
  [/(?<![A-Za-z0-9_])AIza[0-9A-Za-z_-]{35}/, "a Google API key"],
  [/(?<![0-9])[0-9]{8,10}:AA[0-9A-Za-z_-]{33}(?![0-9A-Za-z_-])/, "a Telegram bot token"],
  [/(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/, "a signed JSON Web Token"],
];

/** What credential `value` holds by its shape (CREDENTIAL_SHAPES), or undefined. */
export function credentialShapeIn(value: string): string | undefined {
  return CREDENTIAL_SHAPES.find(([shape]) => shape.test(value))?.[1];
}

/** Keys whose value is a comma-separated list in one text. */
const COMMA_SEPARATED_KEYS: readonly string[] = ["disabledServices", "notifyWebhookPorts", "trustedProxies", "ingressControllerPodLabels"];

/** 010 is 8 to a YAML 1.1 reader, and to the shells and tools that take a leading 0 for octal: ambiguous, in every number a key holds. */
const hasLeadingZeros = (digits: string): boolean => /^-?0\d/.test(digits);
const WITHOUT_LEADING_ZEROS = "without leading zeros (some readers take 010 for octal 8)";

/** The least cpuRequestRatio / memoryRequestRatio (Reader.ratio). */
const MIN_REQUEST_RATIO = 0.01;

/**
 * `scheme://user:password@`: a URL carrying a login, its userinfo as RFC 3986 writes it (no '/', '?', '#' or '@'
 * unencoded). Each class excludes what follows it, so a value of 100,000 characters is matched in linear time
 * (a scheme matched as `[a-z][a-z0-9+.-]*` backtracked from every position: 7 s for 100,000 letters).
 */
const URL_WITH_PASSWORD = /(:\/\/[^\s/?#@:]*):[^\s/?#@]*@/;
/** The same pattern, every match: `shown` masks each password ($1 keeps `://user`). */
const URL_PASSWORD_MASK = new RegExp(URL_WITH_PASSWORD.source, "g");

/**
 * For a size or duration written with a unit ("512mb", "1Gi", "10s"): the unit the key's name already
 * carries, so the refusal says what to write (trading:postgresStorageGi takes 20, not 20Gi).
 */
function unitHint(key: string, value: string): string {
  if (!/^[\d.]+\s*[A-Za-z%]+$/.test(value)) return "";
  const unit = /Gi$/.test(key) ? "GiB" : /Ms$/.test(key) ? "milliseconds" : /Days$/.test(key) ? "days" : undefined;
  return unit !== undefined ? ` (a plain number of ${unit}: the unit is in the key's name)` : " (a plain number, without a unit)";
}

/** A value's case variant of an allowed one ("Docker", "TRUE"): the values are case-sensitive, so the refusal says which was meant. */
function caseHint(value: string, allowed: readonly string[]): string {
  const meant = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  return meant !== undefined ? ` (values are case-sensitive: did you mean '${meant}'?)` : "";
}

function isStructured(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === "object";
  } catch {
    return false;
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/**
 * A registry host (DNS labels, an optional port) and repository path components as the distribution
 * spec spells them (lowercase alphanumerics joined by '.', '_', '__' or dashes): anything else makes
 * an image reference Docker refuses at the build or the push.
 */
const REGISTRY_PREFIX = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
/** A Kubernetes object name (Secret, ClusterIssuer, StorageClass, IngressClass): a DNS-1123 subdomain, as the API server checks it. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Host ports the Docker target publishes for operators on adminBindAddress when publishAdminPorts is
 * on: each datastore's, Prometheus's and Grafana's. The one list: components/ read it from here (the
 * parser stays free of components/, which import @pulumi/pulumi), and the parser checks the edge's
 * ports against it; tests/unit/program.test.ts compares it with the ports the program publishes.
 */
export const dockerAdminHostPorts: Readonly<Record<DataComponent | "prometheus" | "grafana", number>> = {
  postgres: 15432,
  dragonfly: 16379,
  clickhouse: 18123,
  weaviate: 18080,
  arangodb: 18529,
  redpanda: 19092,
  redis: 16380,
  prometheus: 19090,
  grafana: 13000,
};
/**
 * The admin host ports a Docker stack with publishAdminPorts publishes, by owner: each enabled datastore's
 * (Redpanda's only with Redpanda's server: Apache Kafka, its offline stand-in, has one listener,
 * components/data/definitions.ts), Prometheus's and Grafana's when on. The one rule: the parser keeps the
 * edge off them, stacks/host-ports.ts lists them for `npm run up`.
 */
export function publishedAdminPorts(config: Pick<StackConfig, "imageSource" | "datastores"> & { monitoring: Pick<StackConfig["monitoring"], "prometheus" | "grafana"> }): { owner: DataComponent | "prometheus" | "grafana"; port: number }[] {
  const stores = DATA_COMPONENTS.filter((store) => config.datastores[store].enabled && (store !== "redpanda" || serverBuildOf("redpanda", config.imageSource, config.datastores.redpanda.image) === "redpanda"));
  const monitoring = (["prometheus", "grafana"] as const).filter((m) => config.monitoring[m]);
  return [...stores, ...monitoring].map((owner) => ({ owner, port: dockerAdminHostPorts[owner] }));
}

/**
 * Why dockerPidsLimit* stop at MAX_PIDS_LIMIT (catalog/sizing.ts): the policy pack's pids-limit refuses
 * a container above its maxPidsLimit, whose default is that constant; the stack config cannot read the
 * pack's per-stack config, so it holds the default, and a stack that raised the pack's maximum stays
 * within the default here.
 */
const PIDS_BOUND = `the policy pack's pids-limit refuses a container above its default maxPidsLimit, ${MAX_PIDS_LIMIT}: above it a limit no longer bounds a fork bomb on the host`;
/** Host address of the Docker edge's httpPort/httpsPort (components/runtime/docker.ts binds ports without a bindAddress there). */
export const DOCKER_EDGE_ADDRESS = "127.0.0.1";

/**
 * An image override (`trading:<datastore>Image`): a valid reference by Docker's grammar
 * (catalog/images.ts imageReferenceProblem), and pinned by the definition
 * the policy pack's pinned-image-tags applies (catalog/images.ts), so the stack refuses at once what
 * the pack would refuse after the preview.
 */
function checkImage(reader: Reader, key: string, image: string | undefined): string | undefined {
  if (image === undefined) return undefined;
  const unpinned = unpinnedReason(image);
  const problem = imageReferenceProblem(image);
  // A malformed sha256 digest is the pinning rule's to report, with its advice below.
  if (problem !== undefined && !unpinned?.startsWith("has a malformed digest")) {
    throw new ConfigError(key, reader.stack, `is not a valid image reference: ${shown(image)} ${problem}`);
  }
  if (unpinned !== undefined) {
    // The reason and the advice repeat parts of the value: kept short, as shown() keeps the value
    // (only a malformed digest makes a long reason; a floating tag is one of a short list).
    const repository = image.length <= SHOWN_MAX ? parseImageRef(image).repository : "name";
    const reason = unpinned.length <= SHOWN_MAX ? unpinned : "has a malformed digest";
    throw new ConfigError(
      key,
      reader.stack,
      `${shown(image)} ${reason}: pin a version tag (${repository}:<version>) or a digest (${repository}@sha256:<64 hex digits>), ` +
        `or remove the key (pulumi config rm ${CONFIG_NAMESPACE}:${key}) for the stack's pinned default`,
    );
  }
  return image;
}

export function parseStackConfig(stack: string, raw: RawConfig): StackConfig {
  const r = new Reader(raw, stack);
  const target = r.oneOf<Target>("target");
  // The prod stacks are Kubernetes (the README's "What prod deploys"; policies/config/prod.json): a prod stack given the
  // Docker target (dev's settings copied) would run each service once on one host, its datastores never backed up
  // (backups are CronJobs), and its edge on a self-signed certificate unless one is set: refused before anything is made.
  if (target === "docker" && isProdStack(stack)) {
    throw new ConfigError(
      "target",
      stack,
      `'docker' is a development target (one replica of each service on one host, no scheduled backups, a self-signed certificate by default), and ${shown(stack)} is a production stack (prod, prod-*): set ${CONFIG_NAMESPACE}:target kubernetes with the settings of Pulumi.prod.yaml, or deploy Docker under a dev stack (dev, dev-*)`,
    );
  }
  const imageSource = r.oneOf<ImageSource>("imageSource", target === "docker" ? "local" : "upstream");
  const imagePullPolicy = r.oneOf<ImagePullPolicy>("imagePullPolicy");
  // Local images live on one Docker host: a cluster only has them when they were imported into
  // its nodes (scripts/cluster/ does it), and must then never try to pull them.
  if (target === "kubernetes" && imageSource === "local" && imagePullPolicy !== "Never") {
    throw new ConfigError(
      "imageSource",
      stack,
      "'local' images exist only where they were built or imported: on Kubernetes set imagePullPolicy to Never (images imported into the nodes, as scripts/cluster/ does) or use 'upstream'",
    );
  }

  // Never runs only what was imported into the nodes: upstream datastore images and the services image
  // pushed to the registry would never be pulled (every pod ErrImageNeverPull, after the deploy).
  if (target === "kubernetes" && imageSource === "upstream" && imagePullPolicy === "Never") {
    throw new ConfigError(
      "imagePullPolicy",
      stack,
      "'Never' runs only images already imported into the nodes, and 'upstream' images (and the services image pushed to trading:registry) are pulled from their registries: use IfNotPresent (the default) or Always, or imageSource local with the images imported into the nodes (scripts/cluster/)",
    );
  }

  const datastores = {} as Record<DataComponent, DatastoreConfig>;
  for (const name of dataComponents) {
    datastores[name] = {
      enabled: r.boolean(`${name}Enabled`),
      image: checkImage(r, `${name}Image`, r.string(`${name}Image`)),
      storageGi: r.integer(`${name}StorageGi`),
    };
    // An override has no default (the CLI hands "" for it unset), so one given for a datastore that is off was meant for
    // a datastore the operator believes deployed: it would apply to nothing, without a word (the legacy Redis is off by default).
    if (datastores[name].image !== undefined && !datastores[name].enabled) {
      throw new ConfigError(
        `${name}Image`,
        stack,
        `is set while ${CONFIG_NAMESPACE}:${name}Enabled is false, so no ${name} runs it: set ${CONFIG_NAMESPACE}:${name}Enabled true to deploy it, or remove the key (pulumi config rm ${CONFIG_NAMESPACE}:${name}Image)`,
      );
    }
  }

  const registry = r.string("registry");
  if (target === "kubernetes" && imageSource === "upstream" && registry === undefined) {
    throw new ConfigError("registry", stack, "is required on Kubernetes with upstream images: the services image is pushed there");
  }
  if (registry !== undefined && !REGISTRY_PREFIX.test(registry)) {
    throw new ConfigError("registry", stack, `is not a valid registry/repository prefix: ${shown(registry)}`);
  }
  const registryPort = registry !== undefined ? /^[^/]*:(\d+)/.exec(registry)?.[1] : undefined;
  if (registryPort !== undefined && !(Number(registryPort) >= 1 && Number(registryPort) <= 65535 && !/^0/.test(registryPort))) {
    throw new ConfigError("registry", stack, `names the port ${shown(registryPort)}, no TCP port (1 to 65535): the push would fail to connect`);
  }
  // The numeric-name class of smtpHost and ingressHost: a registry host the push resolves (a first segment with '.' or
  // ':', as Docker reads a domain) that ends in a number is an address in a short form (127.1:5000 is loopback).
  const registryHost = registry !== undefined && /[.:]/.test(registry.split("/")[0]) ? registry.split("/")[0].replace(/:\d*$/, "") : undefined;
  if (registryHost !== undefined && isIP(registryHost) === 0 && endsInNumber(registryHost)) {
    throw new ConfigError("registry", stack, `names the host ${shown(registryHost)}, which ${NUMERIC_NAME}: give the registry's DNS name, or its address as four decimal octets`);
  }
  // An address no registry answers on: the push would send the registry login (registryUsername, registryPassword) to the
  // cloud metadata service or the link-local range around it, and the unspecified or a multicast address reaches no registry.
  // Loopback stays: a registry on the machine that pushes, mirrored on the nodes (kind, k3d).
  const registryAddress = registryHost !== undefined && isIP(registryHost) === 4 ? offNetworkIPv4(registryHost) : undefined;
  if (registryAddress !== undefined) {
    throw new ConfigError("registry", stack, `names the host ${shown(registryHost!)}, ${registryAddress}, no registry: the push would send the registry login there; give the registry's DNS name or its address on the network`);
  }
  const registryUsername = r.string("registryUsername");
  // The login goes to the registry as HTTP Basic user:password (RFC 7617): a ':' in the user splits it there.
  if (registryUsername !== undefined && /[:\s]/.test(registryUsername)) {
    throw new ConfigError("registryUsername", stack, "must hold no ':' or white space: the registry reads the login as user:password, so the part after a ':' would be taken for the password (set the password with pulumi config set --secret trading:registryPassword)");
  }
  const servicesImageTag = r.string("servicesImageTag")!;
  // The floating tags are the pack's (catalog/images.ts): the built image is pushed and run under this tag.
  if (!isPinnedBuildTag(servicesImageTag)) {
    throw new ConfigError(
      "servicesImageTag",
      stack,
      `must be a pinned tag (a version such as 0.1.0, not a floating tag: ${FLOATING_TAGS.join(", ")}), got ${shown(servicesImageTag)}`,
    );
  }

  const replicasSetting = r.integer("replicas");
  const replicaOverrides = r.object("serviceReplicas") ?? {};
  const disabledServices = new Set<string>();
  const disabledRaw = r.string("disabledServices");
  if (disabledRaw !== undefined) {
    // An empty entry (",,", a trailing comma) is refused as in the other lists (notifyWebhookPorts, trustedProxies): a name deleted, or one forgotten?
    for (const name of disabledRaw.split(",").map((s) => s.trim())) {
      if (name === "") throw new ConfigError("disabledServices", stack, `has an empty entry (two commas, or one at an end): give the services' names joined by commas, got ${shown(disabledRaw)}`);
      if (!catalog.some((s) => s.name === name)) {
        throw new ConfigError("disabledServices", stack, `${shown(name)} is not a service of the catalog${didYouMean(name, catalog.map((s) => s.name))}`);
      }
      if (disabledServices.has(name)) throw new ConfigError("disabledServices", stack, `names ${shown(name)} twice: give each service once`);
      disabledServices.add(name);
    }
  }

  const services = catalog.filter((s) => !disabledServices.has(s.name));
  for (const service of services) {
    for (const store of service.requires) {
      if (!datastores[store].enabled) {
        throw new ConfigError(
          `${store}Enabled`,
          stack,
          `${service.name} requires ${store}; enable it or add ${service.name} to ${CONFIG_NAMESPACE}:disabledServices`,
        );
      }
    }
  }
  // A service's HTTP calls to a peer that is not deployed fail at run time (no address, no network
  // policy rule): refused here, where the fix is one setting. The entry point's calls are every
  // routed service and it answers 404 for a route it does not have, so it is not held to them.
  for (const service of services) {
    if (service.entryPoint) continue;
    const missing = service.calls.find((peer) => disabledServices.has(peer));
    if (missing !== undefined) {
      throw new ConfigError(
        "disabledServices",
        stack,
        `${service.name} calls ${missing}, which is not deployed: add ${service.name} to ${CONFIG_NAMESPACE}:disabledServices too, or deploy ${missing}`,
      );
    }
  }
  const serviceReplicas: Record<string, number> = {};
  for (const [name, value] of Object.entries(replicaOverrides)) {
    const service = catalog.find((s) => s.name === name);
    if (!service) {
      throw new ConfigError("serviceReplicas", stack, `${shown(name)} is not a service of the catalog${didYouMean(name, catalog.map((s) => s.name))}`);
    }
    // As serviceSettings: replicas of a service the stack does not deploy would apply to nothing, without a word.
    if (!services.includes(service)) {
      throw new ConfigError("serviceReplicas", stack, `${shown(name)} is not deployed (disabledServices, or a datastore it requires is off): its replicas would apply to nothing; remove it from ${CONFIG_NAMESPACE}:serviceReplicas`);
    }
    const max = sizingOf(service).scaling.maxReplicas;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
      throw new ConfigError("serviceReplicas", stack, `replicas of ${shown(name)} must be an integer between 1 and ${max} (its catalog maximum)`);
    }
  }
  for (const service of services) {
    serviceReplicas[service.name] = replicasOf(target, sizingOf(service).scaling, replicasSetting, replicaOverrides[service.name] as number | undefined);
  }
  const { serviceSettings, postgresMaxConnections, postgresPoolDefaults, postgresMemoryGi } = serviceSettingsOf(r, target, services, serviceReplicas, datastores.postgres.enabled);

  const tradingMode = r.oneOf<"paper" | "live">("tradingMode");
  const marketDataSource = r.oneOf<"synthetic" | "replay" | "binance">("marketDataSource");
  // Live orders priced against synthetic or replayed candles spend real money on fake prices.
  if (tradingMode === "live" && marketDataSource !== "binance") {
    throw new ConfigError("marketDataSource", stack, `must be binance when tradingMode is live (real orders on fake prices), got ${shown(marketDataSource)}`);
  }

  const ingressHost = r.string("ingressHost")!;
  if (!HOSTNAME.test(ingressHost)) {
    throw new ConfigError("ingressHost", stack, `is not a valid host name: ${shown(ingressHost)}`);
  }
  if (isIP(ingressHost) === 0 && endsInNumber(ingressHost)) {
    throw new ConfigError("ingressHost", stack, `${shown(ingressHost)} ${NUMERIC_NAME}: give a DNS name`);
  }
  const namespace = r.string("namespace")!;
  if (!DNS_LABEL.test(namespace)) {
    throw new ConfigError("namespace", stack, `must be a DNS label (lowercase, digits, '-'), got ${shown(namespace)}`);
  }
  const ingressControllerNamespace = r.string("ingressControllerNamespace")!;
  if (!DNS_LABEL.test(ingressControllerNamespace)) {
    throw new ConfigError("ingressControllerNamespace", stack, `must be a DNS label (lowercase, digits, '-'), got ${shown(ingressControllerNamespace)}`);
  }
  const ingressControllerPodLabels = labelSelector(r, "ingressControllerPodLabels");
  // The gateway's NetworkPolicy admits the controller by its namespace (and its pod labels when given):
  // in a namespace the cluster's own components share, every one of them would reach the gateway.
  if (target === "kubernetes" && ingressControllerPodLabels === undefined && isClusterNamespace(ingressControllerNamespace)) {
    throw new ConfigError(
      "ingressControllerNamespace",
      stack,
      `${shown(ingressControllerNamespace)} holds the cluster's own pods too, and the gateway admits every pod of the controller's namespace: set the controller's pod labels (pulumi config set ${CONFIG_NAMESPACE}:ingressControllerPodLabels app.kubernetes.io/name=<controller>,...) or run the controller in a namespace of its own`,
    );
  }
  const namespaceOwner = otherOwnerOf(namespace, ingressControllerNamespace);
  if (namespaceOwner !== undefined) {
    throw new ConfigError(
      "namespace",
      stack,
      `${shown(namespace)} belongs to ${namespaceOwner}: the stack creates its namespace, applies its default-deny network policies and Pod Security level to every pod in it, and deletes it on destroy; give the platform a namespace of its own (e.g. ai-trading)`,
    );
  }
  const cpuRequestRatio = r.ratio("cpuRequestRatio");
  const memoryRequestRatio = r.ratio("memoryRequestRatio");
  const tlsSecretName = r.string("tlsSecretName");
  const certIssuer = r.string("certIssuer");
  const storageClass = r.string("storageClass");
  const ingressClass = r.string("ingressClass")!;
  const traefikMiddlewares = r.boolean("traefikMiddlewares");
  if (traefikMiddlewares && !isTraefikClass(ingressClass)) {
    throw new ConfigError("traefikMiddlewares", stack, `is read with a Traefik ingress class only, got ingressClass ${shown(ingressClass)}`);
  }
  // A host-less rule exists only on the Traefik catch-all (ingress-nginx's default server already goes to edge-errors).
  const edgeErrorsAnyHost = r.boolean("edgeErrorsAnyHost");
  if (edgeErrorsAnyHost && !isTraefikClass(ingressClass)) {
    throw new ConfigError("edgeErrorsAnyHost", stack, `is read with a Traefik ingress class only, got ingressClass ${shown(ingressClass)}`);
  }
  // Kubernetes' own settings without a default (the CLI hands "" for them unset): one set on Docker applies to nothing,
  // e.g. certIssuer, where the Docker edge serves the tlsCertificate/tlsPrivateKey secrets or a self-signed certificate.
  if (target === "docker") {
    const kubernetesOnly = ([["certIssuer", certIssuer], ["tlsSecretName", tlsSecretName], ["storageClass", storageClass], ["ingressControllerPodLabels", ingressControllerPodLabels], ["renderYamlTo", r.string("renderYamlTo")]] as const).find(([, v]) => v !== undefined);
    if (kubernetesOnly !== undefined) {
      throw new ConfigError(
        kubernetesOnly[0],
        stack,
        `is read on Kubernetes only, and this stack's target is docker, where it would apply to nothing (the Docker edge serves the tlsCertificate/tlsPrivateKey secrets, else a self-signed certificate; volumes are the engine's): remove it (pulumi config rm ${CONFIG_NAMESPACE}:${kubernetesOnly[0]}) or set ${CONFIG_NAMESPACE}:target kubernetes`,
      );
    }
  }
  // A Traefik controller runs in a namespace of its own (traefik, kube-system with k3s): ingress-nginx, the default, was left
  // from an NGINX setup, and the gateway's NetworkPolicy would admit no pod of the controller (every request refused).
  if (target === "kubernetes" && isTraefikClass(ingressClass) && ingressControllerNamespace === "ingress-nginx") {
    throw new ConfigError(
      "ingressControllerNamespace",
      stack,
      `is 'ingress-nginx' (the default, the NGINX controller's) with the Traefik ingress class ${shown(ingressClass)}: the gateway admits only the controller's namespace, so Traefik's pods would be refused; set ${CONFIG_NAMESPACE}:ingressControllerNamespace to the namespace Traefik runs in (e.g. traefik, or kube-system with ingressControllerPodLabels on k3s)`,
    );
  }
  const objectNames = [["tlsSecretName", tlsSecretName], ["certIssuer", certIssuer], ["storageClass", storageClass], ["ingressClass", ingressClass]] as const;
  for (const [key, name] of objectNames) {
    if (name !== undefined && !DNS_SUBDOMAIN.test(name)) {
      throw new ConfigError(key, stack, `must be a Kubernetes object name (lowercase, digits, '-', '.'; at most 253), got ${shown(name)}`);
    }
  }
  // A staging ACME issuer's certificates chain to a root no browser or client trusts: every client of a
  // production stack would fail TLS (or be taught to click through it). Only the issuer's name is
  // known here (the ClusterIssuer is the cluster's), so a name that says staging or test is refused.
  if (target === "kubernetes" && certIssuer !== undefined && !isDevStack(stack) && isStagingIssuer(certIssuer)) {
    throw new ConfigError(
      "certIssuer",
      stack,
      `${shown(certIssuer)} names a staging or test issuer (e.g. Let's Encrypt staging), whose certificates no browser or client trusts: use the production issuer (e.g. letsencrypt-prod) on this stack; staging issuers are accepted on dev stacks (dev, dev-*) only`,
    );
  }
  if (target === "kubernetes" && tlsSecretName === undefined && certIssuer === undefined) {
    throw new ConfigError("certIssuer", stack, "Kubernetes needs TLS: set certIssuer (cert-manager ClusterIssuer) or tlsSecretName");
  }
  if (target === "kubernetes" && isIP(ingressHost) !== 0) {
    throw new ConfigError("ingressHost", stack, `must be a DNS name: the API server refuses an IP address as an Ingress host, got ${shown(ingressHost)}`);
  }
  // The default (localhost) serves the Docker edge; a certificate authority issues for no such name. One rule
  // whether the stack left the key unset or set it: the CLI hands the program Pulumi.yaml's declared default for
  // a key the stack does not set (pulumi 3.248, checked session 63), so "unset" reaches the program as 'localhost'
  // and could not be told from a stack that wrote it (a rule on the key's absence never fired under the CLI).
  if (target === "kubernetes" && certIssuer !== undefined && isLocalhostName(ingressHost)) {
    const asDefault = ingressHost === keySchema("ingressHost").default ? " (the default, which applies when the stack sets none)" : "";
    throw new ConfigError(
      "ingressHost",
      stack,
      `${shown(ingressHost)}${asDefault} is this machine's own name, which no certificate authority issues for: with certIssuer, cert-manager's order would fail and the Ingress serve no trusted certificate (pulumi config set ${CONFIG_NAMESPACE}:ingressHost <public DNS name>)`,
    );
  }
  // A public ACME CA (Let's Encrypt, ZeroSSL, ...) issues for names under the public DNS root only: for a single
  // label or a special-use or private top-level domain the order fails, and the Ingress serves no trusted
  // certificate (session 65). Only the issuer's name is known here (the ClusterIssuer is the cluster's), so
  // the rule holds for a name that says ACME; a private issuer (selfSigned, ca, step-ca) stays free to certify them.
  const uncertifiable = target === "kubernetes" && certIssuer !== undefined && isPublicAcmeIssuer(certIssuer) ? publicCaRefusal(ingressHost) : undefined;
  if (uncertifiable !== undefined) {
    throw new ConfigError(
      "ingressHost",
      stack,
      `${shown(ingressHost)} is ${uncertifiable}, which no public certificate authority issues for, and certIssuer ${shown(certIssuer!)} names a public ACME issuer, whose order would fail (no trusted certificate): give a public DNS name, or for an internal name a private issuer (selfSigned, ca) or tlsSecretName`,
    );
  }

  const renderYamlTo = r.string("renderYamlTo");
  const renderProblem = renderYamlTo === undefined ? undefined : renderFolderProblem(renderYamlTo);
  if (renderProblem !== undefined) throw new ConfigError("renderYamlTo", stack, renderProblem);


  const httpPort = r.integer("httpPort");
  const httpsPort = r.integer("httpsPort");
  if (httpPort === httpsPort) {
    throw new ConfigError("httpsPort", stack, "must differ from httpPort");
  }

  const adminBindAddress = r.string("adminBindAddress")!;
  // An octet with a leading zero (127.000.0.1) is no address to the engine (Go's net.ParseIP refuses it),
  // which then publishes the admin ports on every interface of the host.
  if (!/^(\d{1,3})(\.\d{1,3}){3}$/.test(adminBindAddress) || adminBindAddress.split(".").some((o) => Number(o) > 255 || hasLeadingZeros(o))) {
    throw new ConfigError("adminBindAddress", stack, `must be an IPv4 address (no leading zeros), got ${shown(adminBindAddress)}`);
  }
  // Read on both targets so a wrong value is reported even where Kubernetes ignores it.
  const publishAdminPorts = r.boolean("publishAdminPorts") && target === "docker";
  const exposure = publishAdminPorts ? adminBindExposure(adminBindAddress) : undefined;
  if (exposure !== undefined) {
    throw new ConfigError(
      "adminBindAddress",
      stack,
      `${shown(adminBindAddress)} is ${exposure}: the datastores', Prometheus's and Grafana's ports would be published there, and Docker's published ports pass by the host firewall's INPUT rules; bind them to loopback (127.0.0.1, the default) or the address of a private or VPN interface of this host (10/8, 172.16/12, 192.168/16, 100.64/10), or set ${CONFIG_NAMESPACE}:publishAdminPorts false`,
    );
  }

  const dockerSubnet = r.string("dockerSubnet")!;
  if (!isCidr(dockerSubnet, 4)) throw new ConfigError("dockerSubnet", stack, `must be an IPv4 CIDR such as 172.28.0.0/24, got ${shown(dockerSubnet)}`);
  if (zeroPaddedPrefix(dockerSubnet) !== undefined) throw new ConfigError("dockerSubnet", stack, zeroPaddedPrefixProblem(dockerSubnet));
  // The engine routes the subnet into its bridge on the host: a public range shadows those internet
  // hosts for the host and every container, and link-local holds the cloud metadata address, which a
  // container given 169.254.169.254 would answer for the host's own agents (session 40).
  if (!isPrivateCidr(dockerSubnet)) {
    throw new ConfigError(
      "dockerSubnet",
      stack,
      `must lie inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16): the engine routes it to its bridge on the host, so a public, loopback or link-local range (the cloud metadata address) would be captured by the containers, got ${shown(dockerSubnet)}`,
    );
  }
  // The subnet is the gateway's default TRUST_PROXY on docker, and the service kit refuses an entry wider
  // than the edge proxy's bound at start (catalog/addresses.ts): a wider network would deploy a gateway
  // that never starts. The stack's network holds a few dozen containers; a /16 holds 65,534 (session 42).
  if (widerThanEdgeProxy(4, prefixOf(dockerSubnet))) {
    throw new ConfigError(
      "dockerSubnet",
      stack,
      `${shown(dockerSubnet)} is wider than /${TRUSTED_PROXY_MIN_PREFIX.v4}: the gateway trusts X-Forwarded-For from the stack's network (its default trustedProxies) and refuses to start with a trusted range wider than the edge proxy's; the stack needs no more than a /16 (e.g. 172.28.0.0/24, the default)`,
    );
  }
  // Docker masks the host bits away (or, newer engines, refuses the network): 172.28.0.1/24 is a typo more often than not.
  const subnetNetwork = hostBitsNetwork(dockerSubnet);
  if (subnetNetwork !== undefined) throw new ConfigError("dockerSubnet", stack, hostBitsProblem(dockerSubnet, subnetNetwork, false));
  const trustedProxies = r.string("trustedProxies") || (target === "docker" ? dockerSubnet : "10.244.0.0/16");
  const proxyEntries = trustedProxies.split(",").map((x) => x.trim());
  const badProxy = proxyEntries.find((x) => !isCidr(x, 4) && !isCidr(x, 6) && isIP(x) === 0);
  if (badProxy !== undefined)
    throw new ConfigError("trustedProxies", stack, `must be comma-separated IP addresses or CIDRs of the edge proxy (IPv4 /16, IPv6 /48 or narrower), got ${shown(badProxy)}`);
  const zeroPaddedProxy = proxyEntries.find((x) => zeroPaddedPrefix(x) !== undefined);
  if (zeroPaddedProxy !== undefined) throw new ConfigError("trustedProxies", stack, zeroPaddedPrefixProblem(zeroPaddedProxy));
  // proxy-addr (the gateway's trustProxy) applies an IPv4-mapped range to IPv4 clients with 96 bits
  // less: ::ffff:0.0.0.0/96 becomes 0.0.0.0/0, every client's X-Forwarded-For trusted.
  const mappedProxy = proxyEntries.find((x) => isIPv4MappedIPv6(x.split("/")[0]));
  if (mappedProxy !== undefined)
    throw new ConfigError("trustedProxies", stack, `must not hold an IPv4-mapped IPv6 address (::ffff:...), which the gateway applies to IPv4 clients: write it as IPv4, got ${shown(mappedProxy)}`);
  // The gateway takes a client's address from X-Forwarded-For when the peer is inside an entry: every host
  // there may pick the address its rate limit, API-key failures and login lockout are counted by. The
  // entry covers the edge proxy: on Kubernetes the ingress controller's pods, inside the pod network
  // (the default 10.244.0.0/16; a pod network is commonly a /16, per-node IPv6 ranges /64 inside a /48),
  // so nothing wider is accepted. On Docker the default is the stack's own network (dockerSubnet), held
  // to the same bound above. The bound is the service kit's too (catalog/addresses.ts), which refuses a
  // wider TRUST_PROXY at start.
  const wideProxy = proxyEntries.find((x) => widerThanEdgeProxy(isIP(x.split("/")[0]) === 4 ? 4 : 6, prefixOf(x)));
  if (wideProxy !== undefined) {
    throw new ConfigError(
      "trustedProxies",
      stack,
      `${shown(wideProxy)} is wider than the edge proxy (at most /${TRUSTED_PROXY_MIN_PREFIX.v4} for IPv4, /${TRUSTED_PROXY_MIN_PREFIX.v6} for IPv6): every host in it could set X-Forwarded-For and choose the address the gateway's rate limit and login lockout count; list the ingress controller's pod range (e.g. 10.244.0.0/16) or the edge's addresses`,
    );
  }
  // A public IPv4 entry trusts that internet network to set X-Forwarded-For: the edge proxy sends from the
  // stack's own network or the pod network, private ranges (catalog/addresses.ts, the services' rule too).
  const publicProxy = proxyEntries.find((x) => isIP(x.split("/")[0]) === 4 && nonProxyIPv4(x.split("/")[0]) !== undefined);
  if (publicProxy !== undefined) {
    throw new ConfigError(
      "trustedProxies",
      stack,
      `${shown(publicProxy)} is ${nonProxyIPv4(publicProxy.split("/")[0])}, no edge proxy's range: every host there could set X-Forwarded-For and choose the address the gateway's rate limit and login lockout count; the edge proxy (the stack's Nginx, the ingress controller's pods) sends from ${PROXY_IPV4_RANGES}`,
    );
  }
  // IPv6 (session 51): the edge proxy sends from the cluster's own network (unique local, link-local,
  // loopback). A global unicast entry is any internet network's too, unless it is the pod network (EKS
  // IPv6, dual-stack clusters give pods public addresses): the named opt-in says so, and the stack hands
  // it to the gateway (TRUST_PROXY_GLOBAL_IPV6), which refuses the same without it (catalog/addresses.ts).
  const trustGlobalIPv6Proxies = r.boolean("trustGlobalIPv6Proxies");
  const v6Proxies = proxyEntries.filter((x) => isIP(x.split("/")[0]) === 6).map((x) => ({ entry: x, scope: ipv6ProxyScope(x.split("/")[0]) }));
  const noUnicastProxy = v6Proxies.find((p) => p.scope === "none");
  if (noUnicastProxy !== undefined)
    throw new ConfigError("trustedProxies", stack, `${shown(noUnicastProxy.entry)} is no unicast range (multicast, unspecified or reserved), no edge proxy's range: the edge proxy sends from ${PROXY_IPV6_RANGES} (or a global pod network)`);
  const globalProxy = v6Proxies.find((p) => p.scope === "global");
  if (globalProxy !== undefined && !trustGlobalIPv6Proxies) {
    throw new ConfigError(
      "trustedProxies",
      stack,
      `${shown(globalProxy.entry)} is global IPv6 unicast: every host of it could set X-Forwarded-For and choose the address the gateway's rate limit and login lockout count; the edge proxy sends from ${PROXY_IPV6_RANGES} unless the cluster's pod network is global (EKS IPv6, dual-stack clusters): if this is it, set ${CONFIG_NAMESPACE}:trustGlobalIPv6Proxies true`,
    );
  }
  const repeatedProxy = repeatedProxyRange(proxyEntries);
  if (repeatedProxy !== undefined) {
    const [first, second] = repeatedProxy;
    throw new ConfigError(
      "trustedProxies",
      stack,
      first === second
        ? `lists ${shown(first)} twice: give each range once`
        : `lists ${shown(first)} and ${shown(second)}, the same range to the gateway (it matches the bits of the address up to the prefix length, in any IPv6 spelling): give each range once`,
    );
  }
  // The gateway masks the host bits away: 10.0.0.1/16 trusts all of 10.0.0.0/16, where a host (10.0.0.1) was meant as often.
  const hostBitsProxy = proxyEntries.find((x) => hostBitsNetwork(x) !== undefined);
  if (hostBitsProxy !== undefined) throw new ConfigError("trustedProxies", stack, hostBitsProblem(hostBitsProxy, hostBitsNetwork(hostBitsProxy)!, true));
  // On Kubernetes the gateway's peer is the ingress controller's pod, whose address is in the pod network (or the node's,
  // with hostNetwork): never loopback or link-local. A list of only those trusts no peer the gateway has, and every
  // client would count as the controller's address (one rate limit and one login lockout for all).
  if (target === "kubernetes" && proxyEntries.every((x) => isLoopbackOrLinkLocal(x.split("/")[0]))) {
    throw new ConfigError(
      "trustedProxies",
      stack,
      `${shown(trustedProxies)} holds only loopback or link-local addresses, which the ingress controller's pods never send from (the pod network, e.g. 10.244.0.0/16, or the node's address): the gateway would ignore their X-Forwarded-For and count every client as the controller's address (one rate limit and one login lockout for all); list the pod network the controller runs in`,
    );
  }
  // On Docker the gateway's peer is the Nginx edge, whose address the engine assigns from dockerSubnet at creation: a
  // trustedProxies covering none of the subnet (another range, one address of it) would ignore the edge's X-Forwarded-For,
  // and every client would count as the edge's one address (one rate-limit bucket, one login lockout for all).
  if (target === "docker" && !proxyEntries.some((x) => isIP(x.split("/")[0]) === 4 && rangeCovers(x, dockerSubnet))) {
    throw new ConfigError(
      "trustedProxies",
      stack,
      `${shown(trustedProxies)} does not cover dockerSubnet ${shown(dockerSubnet)}, where the engine gives the Nginx edge its address: the gateway would ignore the edge's X-Forwarded-For, and count every client as the edge's one address (one rate limit and one login lockout for all); add ${dockerSubnet} (or remove ${CONFIG_NAMESPACE}:trustedProxies: on Docker it defaults to dockerSubnet)`,
    );
  }
  const smtpHost = r.string("smtpHost");
  if (smtpHost !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(smtpHost)) {
    throw new ConfigError("smtpHost", stack, `must be a host name or IPv4 address, got ${shown(smtpHost)}`);
  }
  // Checked before unusableRelay, which knows addresses by their dotted quads: 127.1 and 0xa9fea9fe reached loopback and the metadata address.
  if (smtpHost !== undefined && isIP(smtpHost) === 0 && endsInNumber(smtpHost)) {
    throw new ConfigError("smtpHost", stack, `${shown(smtpHost)} ${NUMERIC_NAME}: give the relay's host name, or its address as four decimal octets (e.g. 192.0.2.25)`);
  }
  const relayProblem = smtpHost !== undefined ? unusableRelay(smtpHost) : undefined;
  if (smtpHost !== undefined && relayProblem !== undefined) {
    throw new ConfigError(
      "smtpHost",
      stack,
      `${shown(smtpHost)} is ${relayProblem}, no mail relay: notification-service would send the relay login (smtpUsername, smtpPassword) there; give the relay's host name or its address on the network`,
    );
  }
  const smtpUsername = r.string("smtpUsername");
  // E-mail is off without a relay (notification-service only warns): the login would be ignored without a word.
  if (smtpUsername !== undefined && smtpHost === undefined) {
    throw new ConfigError("smtpUsername", stack, `is set without smtpHost, and e-mail is off without a relay, so the login would be ignored: set the relay (pulumi config set ${CONFIG_NAMESPACE}:smtpHost <host>) or remove the login (pulumi config rm ${CONFIG_NAMESPACE}:smtpUsername)`);
  }
  const smtpFrom = r.string("smtpFrom")!;
  if (/[\r\n]/.test(smtpFrom) || !/@/.test(smtpFrom)) throw new ConfigError("smtpFrom", stack, "must be one line with an e-mail address");
  const notifyWebhookPorts = webhookPorts(r);

  const prometheus = r.boolean("prometheusEnabled");
  const grafana = r.boolean("grafanaEnabled");
  if (grafana && !prometheus) {
    throw new ConfigError("grafanaEnabled", stack, "Grafana's only datasource is the stack's Prometheus: enable prometheusEnabled or set grafanaEnabled false");
  }

  // The edge and the admin ports share the host's address: Docker would refuse the second container
  // with "port is already allocated". Only the admin ports the stack publishes count: a datastore or
  // monitoring that is off, or Redpanda's offline stand-in, leaves its port free for the edge (session 65).
  if (publishAdminPorts && adminBindAddress === DOCKER_EDGE_ADDRESS) {
    const published = publishedAdminPorts({ imageSource, datastores, monitoring: { prometheus, grafana } });
    for (const [key, port] of [["httpPort", httpPort], ["httpsPort", httpsPort]] as const) {
      const owner = published.find((p) => p.port === port)?.owner;
      if (owner !== undefined) {
        throw new ConfigError(key, stack, `must differ from ${owner}'s admin host port ${port} on adminBindAddress ${adminBindAddress} (or set publishAdminPorts false)`);
      }
    }
  }

  const schedule = cronSchedule(r, "backupSchedule", BACKUP_MIN_RUN_SECONDS);
  const jobSchedules: Record<string, string> = {};
  for (const service of services) {
    const job = service.scheduledJob;
    if (job) jobSchedules[job.scheduleKey] = cronSchedule(r, job.scheduleKey, job.minRunSeconds ?? DEFAULT_MIN_RUN_SECONDS);
  }

  if (target === "docker") {
    const containers = dockerContainerCount(services, serviceReplicas, datastores, prometheus, grafana);
    const room = 2 ** (32 - prefixOf(dockerSubnet)) - 3;
    if (containers > room) {
      throw new ConfigError(
        "dockerSubnet",
        stack,
        `${shown(dockerSubnet)} holds ${Math.max(room, 0)} container addresses (its size less the network's, the broadcast and the engine's gateway addresses), and this stack runs ${containers} containers on it (services with their replicas, their jobs, the datastores, monitoring and the edge): the last ones would fail to start after the others were made ("no available IPv4 addresses"); give a wider subnet (a /24 holds 253; the default is 172.28.0.0/24)`,
      );
    }
  }

  return {
    stack,
    target,
    imageSource,
    servicesImageTag,
    registry,
    registryUsername,
    datastores,
    monitoring: {
      prometheus,
      grafana,
      retentionDays: r.integer("prometheusRetentionDays"),
    },
    serviceReplicas,
    services,
    serviceSettings,
    postgresMaxConnections,
    postgresPoolDefaults,
    postgresMemoryGi,
    trustedProxies,
    trustGlobalIPv6Proxies,
    rateLimit: gatewayRateLimit(r),
    trading: { mode: tradingMode, marketDataSource },
    docker: {
      httpPort,
      httpsPort,
      publishAdminPorts,
      adminBindAddress,
      subnet: dockerSubnet,
      pidsLimits: { stateless: r.integer("dockerPidsLimitStateless", PIDS_BOUND), stateful: r.integer("dockerPidsLimitStateful", PIDS_BOUND), job: r.integer("dockerPidsLimitJob", PIDS_BOUND) },
    },
    kubernetes: {
      namespace,
      storageClass,
      ingressHost,
      ingressClass,
      tlsSecretName,
      certIssuer,
      ingressControllerNamespace,
      ingressControllerPodLabels,
      traefikMiddlewares,
      edgeErrorsAnyHost,
      imagePullPolicy,
      cpuRequestRatio,
      memoryRequestRatio,
      renderYamlTo,
      backupSchedule: schedule,
      exposeDatastores: exposedDatastores(r, target),
    },
    jobSchedules,
    logLevel: logLevel(r, target),
    smtp: { host: smtpHost, port: smtpPort(r), username: smtpUsername, from: smtpFrom },
    notifyWebhookPorts,
  };
}

/**
 * The replicas that make the connection need, as the refusal names them: on Kubernetes each autoscaler
 * may scale to its maximum (the stack's replicas count only above it), on Docker the replicas run.
 */
function lowerReplicas(target: Target): string {
  return target === "kubernetes"
    ? `the autoscalers' most replicas (maxReplicas in catalog/sizing.ts; ${CONFIG_NAMESPACE}:replicas and serviceReplicas count only above them)`
    : `the replicas (${CONFIG_NAMESPACE}:replicas, serviceReplicas)`;
}

/**
 * trading:serviceSettings (each variable one the stack may set, in its range; then the cross-service
 * orders, e.g. user-management's ACCESS_TOKEN_TTL_S over the gateway's ACCESS_TOKEN_MAX_AGE_S) and
 * trading:postgresMaxConnections against what the stack can open at once, and the memory PostgreSQL can
 * use at it against the server's limit (stacks/service-settings.ts).
 */
function serviceSettingsOf(
  r: Reader,
  target: Target,
  services: ServiceDefinition[],
  replicas: Record<string, number>,
  postgres: boolean,
): { serviceSettings: ServiceSettings; postgresMaxConnections: number; postgresPoolDefaults: Record<string, number>; postgresMemoryGi: number } {
  const raw = r.object("serviceSettings") ?? {};
  const problem = serviceSettingsProblem(raw, catalog, services) ?? crossServiceProblem(raw as ServiceSettings, services);
  if (problem !== undefined) throw new ConfigError("serviceSettings", r.stack, problem);
  const serviceSettings = raw as ServiceSettings;
  const need = postgres ? postgresConnectionNeed(target, services, replicas, serviceSettings) : { total: 0, parts: [] };
  const set = r.integer("postgresMaxConnections");
  if (set > 0 && set < need.total) {
    throw new ConfigError(
      "postgresMaxConnections",
      r.stack,
      `${set} is below the PostgreSQL connections this stack can open at once, ${need.total}: ${need.parts.join(", ")}; past max_connections every new connection is refused ('too many clients'): raise it, set it 0 to size it to the stack, or lower POSTGRES_POOL_MAX in ${CONFIG_NAMESPACE}:serviceSettings or ${lowerReplicas(target)}`,
    );
  }
  const maxConnections = set > 0 ? set : need.total;
  const memoryGi = r.integer("postgresMemoryGi");
  // The server's memory at that max_connections: past its limit the kernel kills a backend, and
  // PostgreSQL ends every session to restart (stacks/service-settings.ts postgresMemoryExcess).
  const excess = postgres ? postgresMemoryExcess(maxConnections, memoryGi) : undefined;
  if (excess !== undefined) {
    const made = set > 0 ? `${set} (as set)` : `${need.total} (sized to what this stack can open at once: ${need.parts.join(", ")})`;
    throw new ConfigError(
      // The key to change: max_connections where the stack set it, else the memory its clients outgrow.
      set > 0 ? "postgresMaxConnections" : "postgresMemoryGi",
      r.stack,
      `PostgreSQL's max_connections of ${made} lets its memory reach ${excess.totalMiB} MiB (${excess.parts.join(", ")}), above its memory limit of ${memoryGi} GiB (${CONFIG_NAMESPACE}:postgresMemoryGi, ${memoryGi * 1024} MiB): at the limit the kernel kills a backend and PostgreSQL ends every session; raise ${CONFIG_NAMESPACE}:postgresMemoryGi to ${Math.ceil(excess.totalMiB / 1024)}, ${set > 0 ? `lower ${CONFIG_NAMESPACE}:postgresMaxConnections (to no less than ${need.total}, what the stack can open at once), ` : ""}or lower POSTGRES_POOL_MAX in ${CONFIG_NAMESPACE}:serviceSettings or ${lowerReplicas(target)}`,
    );
  }
  return { serviceSettings, postgresMaxConnections: maxConnections, postgresPoolDefaults: postgres ? postgresPoolDefaults(target, services, serviceSettings) : {}, postgresMemoryGi: memoryGi };
}

/**
 * notifyWebhookPorts: a comma-separated list of TCP ports (1 to 65535, each once), none of them one
 * of FETCH_BAD_PORTS (catalog/addresses.ts): notification-service POSTs a user-chosen body to any
 * public host on these ports, and on those a service speaking another protocol (SSH, SMTP, IMAP,
 * ...) would read it as its own commands; nor of INTERNAL_SERVICE_PORTS (datastores', the cluster's:
 * PostgreSQL 5432, etcd 2379, the kubelet 10250, ...), which a user's URL would probe hosts for.
 */
function webhookPorts(r: Reader): number[] {
  const raw = r.string("notifyWebhookPorts");
  const items = (raw ?? "").split(",").map((s) => s.trim());
  if (items.length === 0 || items.some((s) => s === "")) {
    throw new ConfigError("notifyWebhookPorts", r.stack, `must be a comma-separated list of TCP ports, e.g. 443 or 443,8443, got ${shown(raw ?? "")}`);
  }
  const ports: number[] = [];
  for (const item of items) {
    if (!/^[0-9]{1,5}$/.test(item) || Number(item) < 1 || Number(item) > 65535) {
      throw new ConfigError("notifyWebhookPorts", r.stack, `${shown(item)} is not a TCP port (1 to 65535)`);
    }
    if (hasLeadingZeros(item)) {
      throw new ConfigError("notifyWebhookPorts", r.stack, `${shown(item)} must be a port ${WITHOUT_LEADING_ZEROS}`);
    }
    const port = Number(item);
    if (FETCH_BAD_PORTS.includes(port)) {
      throw new ConfigError(
        "notifyWebhookPorts",
        r.stack,
        `${port} is the port of a service that speaks no HTTP (the WHATWG Fetch standard's bad ports: SSH, SMTP, IMAP, DNS, ...): a webhook's POST there would read as that service's commands; use 443 or another HTTPS port`,
      );
    }
    const internal = INTERNAL_SERVICE_PORTS[port];
    if (internal !== undefined) {
      throw new ConfigError(
        "notifyWebhookPorts",
        r.stack,
        `${port} is ${internal}'s port, a datastore's or cluster service's no webhook receiver runs on (catalog/addresses.ts INTERNAL_SERVICE_PORTS): a user's webhook URL could probe hosts for it; use 443 or another HTTPS port (8443, 9443)`,
      );
    }
    if (ports.includes(port)) throw new ConfigError("notifyWebhookPorts", r.stack, `lists ${port} twice`);
    ports.push(port);
  }
  return ports;
}

/** smtpPort: a relay's port, never another protocol's (catalog/addresses.ts smtpPortProblem, the service's SMTP_PORT rule too). */
function smtpPort(r: Reader): number {
  const port = r.integer("smtpPort");
  const problem = smtpPortProblem(port);
  if (problem !== undefined) throw new ConfigError("smtpPort", r.stack, problem);
  return port;
}

/**
 * The gateway's rate limit per user and per client address (its RATE_LIMIT_WINDOW_MS and
 * RATE_LIMIT_MAX_REQUESTS). Each key has its bounds in the schema (a window of 1 s to 1 h: a client
 * over the limit waits for the window's end; 10 to 1,000,000 requests: a page of the web client makes
 * several), and the two together an average rate: at most RATE_LIMIT.maxPerSecond (the whole platform
 * saturates near 960 orders a second on the bench host, README "The order path": a limit per user
 * above that limits nothing, e.g. 1,000,000 requests a second) and at least one request a minute
 * (below it one user's session cannot load its pages and refresh its token).
 */
export const RATE_LIMIT = { maxPerSecond: 1_000, minPerMinute: 1 } as const;

function gatewayRateLimit(r: Reader): { windowMs: number; maxRequests: number } {
  const windowMs = r.integer("rateLimitWindowMs");
  const maxRequests = r.integer("rateLimitMaxRequests");
  const perSecond = (maxRequests * 1_000) / windowMs;
  const rate = `${maxRequests} requests in ${windowMs} ms`;
  if (perSecond > RATE_LIMIT.maxPerSecond) {
    throw new ConfigError(
      "rateLimitMaxRequests",
      r.stack,
      `allows ${Math.round(perSecond)} requests a second (${rate}), more than the whole platform serves: at most ${RATE_LIMIT.maxPerSecond} a second on average, i.e. at most ${(RATE_LIMIT.maxPerSecond * windowMs) / 1_000} in a window of ${windowMs} ms`,
    );
  }
  if (perSecond * 60 < RATE_LIMIT.minPerMinute) {
    throw new ConfigError(
      "rateLimitMaxRequests",
      r.stack,
      `allows less than one request a minute on average (${rate}): at least ${Math.ceil((RATE_LIMIT.minPerMinute * windowMs) / 60_000)} in a window of ${windowMs} ms`,
    );
  }
  return { windowMs, maxRequests };
}

/**
 * exposeDatastores: a LoadBalancer Service per datastore puts its port on the cluster's external
 * address, the generated password its only defence. Refused on Kubernetes on every stack but dev
 * (session 50; the policy pack's no-public-exposure refuses the Services under prod.json too, the
 * second line); an operator reaches a datastore with `kubectl port-forward`.
 */
function exposedDatastores(r: Reader, target: Target): boolean {
  const expose = r.boolean("exposeDatastores");
  if (expose && target === "kubernetes" && !isDevStack(r.stack)) {
    throw new ConfigError(
      "exposeDatastores",
      r.stack,
      `true gives every datastore a LoadBalancer Service, its port on the cluster's external address with its password the only defence: reach a datastore with 'kubectl port-forward -n <namespace> svc/<datastore> <port>' instead; LoadBalancer datastores are accepted on dev stacks (dev, dev-*) only`,
    );
  }
  return expose;
}

/**
 * What an admin bind address (an IPv4 address, checked before) exposes the admin ports to beyond this
 * host and its private networks, or undefined for loopback, an RFC 1918 address or one of the shared
 * range 100.64/10 (VPNs such as Tailscale, the documented use: a VPN interface).
 */
function adminBindExposure(address: string): string | undefined {
  const [a, b] = address.split(".").map(Number);
  if (address === "0.0.0.0") return "every interface of the host (every network it is on, the internet included when it has a public address)";
  if (a === 127 || isPrivateCidr(`${address}/32`) || (a === 100 && b >= 64 && b <= 127)) return undefined;
  if (a === 169 && b === 254) return "a link-local address (the cloud metadata service's range)";
  if (a === 0 || a >= 224) return "no unicast address of a host";
  return "a public address";
}

/**
 * Whether a name (not a dotted-quad address: checked by the caller) ends in a number, decimal or 0x hex: no
 * DNS name does (no top-level domain is numeric), and the resolver (inet_aton behind getaddrinfo and Node's
 * dns.lookup, which nodemailer falls back to) and the WHATWG URL parser read it as an IPv4 address in a
 * short, octal or hex form: 127.1, 2130706433 and 0x7f.1 are 127.0.0.1, 0xa9fea9fe is 169.254.169.254,
 * 010.0.0.1 is 8.0.0.1 (session 62).
 */
function endsInNumber(host: string): boolean {
  const last = host.replace(/\.$/, "").split(".").pop() ?? "";
  return /^(0x[0-9a-f]*|\d+)$/i.test(last);
}
const NUMERIC_NAME = "ends in a number, so it is no host name: resolvers and URL parsers read it as an IPv4 address in a short, octal or hex form (127.1 and 2130706433 are 127.0.0.1)";

/** `localhost` or a name under it: a name for this machine alone (RFC 6761). */
function isLocalhostName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}

/**
 * What an IPv4 address reaches instead of a server on the network (the cloud metadata service, link-local, the
 * unspecified address, multicast), or undefined: the registry's and the SMTP relay's refusals (loopback is each one's own
 * judgement: a registry on the pushing machine is fine, a relay on it is the container itself).
 */
function offNetworkIPv4(address: string): string | undefined {
  if (CLOUD_METADATA_ADDRESSES.includes(address)) return "the cloud metadata address (the node's cloud credentials)";
  const [a, b] = address.split(".").map(Number);
  if (a === 169 && b === 254) return "link-local (the cloud metadata service's range)";
  if (a === 0) return "the unspecified address";
  if (a >= 224) return "multicast or broadcast";
  return undefined;
}

/** Log levels that write request detail the info level leaves out (the services' pino levels). */
const VERBOSE_LOG_LEVELS = ["debug", "trace"];

/**
 * The services' log level (their LOG_LEVEL). Debug and trace log request detail the info level leaves
 * out (bodies, headers, identifiers) to every reader of the cluster's logs: refused on Kubernetes on
 * every stack but dev unless `allowVerboseLogs` says the operator means it (session 42; the policy
 * pack's no-insecure-runtime-flags judges the workloads' LOG_LEVEL the same way).
 */
function logLevel(r: Reader, target: Target): string {
  const level = r.oneOf("logLevel");
  // Read (and so checked) on every stack, as every key is.
  const allowVerbose = r.boolean("allowVerboseLogs");
  if (target === "kubernetes" && !isDevStack(r.stack) && VERBOSE_LOG_LEVELS.includes(level) && !allowVerbose) {
    throw new ConfigError(
      "logLevel",
      r.stack,
      `'${level}' logs request detail the info level leaves out (bodies, headers, identifiers) to every reader of the cluster's logs: use info on this stack, or, for the time of an investigation, set ${CONFIG_NAMESPACE}:allowVerboseLogs true (and list the workloads in the policy pack's no-insecure-runtime-flags verboseLogWorkloads); verbose levels are accepted on dev stacks (dev, dev-*)`,
    );
  }
  return level;
}

/** The project's folder (Pulumi.yaml, .gitignore): this file's clone. */
const PROJECT_ROOT = resolve(__dirname, "..");

/** The folder .gitignore keeps out of git at any depth (`rendered/`): manifests rendered for review go there. */
const RENDER_FOLDER = "rendered";

/**
 * Why a renderYamlTo folder is no place for the rendered manifests (Secrets in plain text), or undefined:
 * it must lie in the project (PROJECT_ROOT, the clone whose .gitignore guards it; a relative path is
 * resolved against it, as the provider does) with a `rendered` folder on its way, ignored at any depth. Judged on the
 * folder as the write would reach it: `..` resolved and the symlinks of its existing parents followed
 * (rendered/ a link into src/ is src/). A folder leaving the project (`../x`, an absolute path elsewhere,
 * a link out) was taken until session 65: another clone's folder, which its git need not ignore, or any
 * folder of the machine.
 */
function renderFolderProblem(folder: string): string | undefined {
  const project = realpathSync(PROJECT_ROOT);
  const reached = realpathOfExisting(resolve(project, folder)); // a backslash is a name's character here, as to the provider on Linux
  const inProject = relative(project, reached);
  const use = `use ${RENDER_FOLDER}/<name> (ignored by .gitignore)`;
  if (inProject === ".." || inProject.startsWith(`..${sep}`) || isAbsolute(inProject)) {
    return `${shown(folder)} leaves the project (it reaches ${shown(reached)}), and the manifests hold the stack's Secrets in plain text, in a folder no .gitignore of this project guards (another clone's, or any of the machine): ${use}`;
  }
  if (!inProject.split(sep).includes(RENDER_FOLDER)) {
    return `${shown(folder)} is a folder of the project that git does not ignore, and the manifests hold the stack's Secrets in plain text, ready for the next 'git add': ${use}`;
  }
  return undefined;
}

/** A path with the symlinks of its longest existing parent followed (the rest is made by the write, as written). */
function realpathOfExisting(path: string): string {
  const rest: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(realpathSync(at), ...rest.reverse());
    } catch {
      const parent = dirname(at);
      if (parent === at) return path;
      rest.push(basename(at));
      at = parent;
    }
  }
}

const CRON_NAMES = /JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT/gi;

/**
 * The least time one backup run needs (a dump of the stack's databases takes minutes): the backup
 * schedule must leave it that (components/data/backup.ts asks 3 h, cut to half the shortest gap).
 */
export const BACKUP_MIN_RUN_SECONDS = 1_800;
/** The least time one run of a catalog scheduled job needs when its `scheduledJob.minRunSeconds` gives none. */
export const DEFAULT_MIN_RUN_SECONDS = 600;

/**
 * A cron expression both schedulers run alike: five fields (minute hour day-of-month month
 * day-of-week, UTC) in the syntax Kubernetes CronJobs and croner (the Docker cron runner) share
 * (numbers, names, `*`, `,`, `-`, `/`; none of croner's extensions such as L, W or #; day-of-week
 * 0-6, as a CronJob reads it: croner also takes 7 for Sunday), valid for croner, each value of a
 * field listed once (repeatedCronValue), with an interval
 * between its ticks (one firing at most once in the sampled 400 days gives the overdue alert
 * nothing to measure), and leaving each run `minRunSeconds`: a run's time limit is half the
 * schedule's shortest gap (components/monitoring/scheduled-jobs.ts runTimeoutSeconds), so the
 * shortest gap must be at least twice what a run needs, or every run is stopped unfinished.
 */
function cronSchedule(r: Reader, key: string, minRunSeconds: number): string {
  const value = r.string(key) ?? "";
  const fields = value.split(/\s+/);
  if (fields.length !== 5 || fields.some((f) => !/^[0-9*,\/-]+$/.test(f.replace(CRON_NAMES, "0")))) {
    throw new ConfigError(key, r.stack, `must be a five-field cron expression (minute hour day-of-month month day-of-week, UTC; numbers, names, * , - /), got ${shown(value)}`);
  }
  // Day-of-week numbers (a step's size aside): a CronJob refuses 7, which croner reads as Sunday.
  const dayNumbers = fields[4].split(",").flatMap((part) => part.split("/")[0].match(/\d+/g) ?? []);
  if (dayNumbers.some((n) => Number(n) > 6)) {
    throw new ConfigError(key, r.stack, `day-of-week must be 0-6 (0 = Sunday) or a name: Kubernetes CronJobs refuse 7, got ${shown(value)}`);
  }
  let gaps: TickGaps | undefined;
  try {
    gaps = tickGaps(value);
  } catch (e) {
    throw new ConfigError(key, r.stack, `is not a valid cron expression: ${(e as Error).message}`);
  }
  const repeat = repeatedCronValue(fields);
  if (repeat !== undefined) {
    const { field, first, second } = repeat;
    const where = first === second ? `'${first}' listed twice` : `in '${first}' and in '${second}'`;
    throw new ConfigError(
      key,
      r.stack,
      `its ${field} field gives ${repeat.value} twice (${where}): the job runs once at a value however often it is listed, so a repeat is a slip (another value meant?): give each value once, got ${shown(value)}`,
    );
  }
  if (!gaps) {
    throw new ConfigError(key, r.stack, `fires at most once in ${GAP_SAMPLE_DAYS} days (or never): a job needs an interval for its overdue alert, got ${shown(value)}`);
  }
  if (gaps.shortest < 2 * minRunSeconds) {
    throw new ConfigError(
      key,
      r.stack,
      `ticks ${gaps.shortest} s apart at the closest, so each run would be stopped after ${Math.floor(gaps.shortest / 2)} s (half the gap), less than the ${minRunSeconds} s one needs: space the ticks at least ${2 * minRunSeconds} s apart, got ${shown(value)}`,
    );
  }
  return value;
}

/** A five-field cron expression's fields, by name, with the values each takes (day-of-week 7 is refused before). */
const CRON_FIELDS = [
  { field: "minute", min: 0, max: 59 },
  { field: "hour", min: 0, max: 23 },
  { field: "day-of-month", min: 1, max: 31 },
  { field: "month", min: 1, max: 12 },
  { field: "day-of-week", min: 0, max: 6 },
] as const;
/** The numbers cron reads month and day names as (croner and a CronJob alike). */
const CRON_NAME_NUMBERS: Record<string, number> = Object.fromEntries([
  ..."JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(" ").map((name, i) => [name, i + 1]),
  ..."SUN MON TUE WED THU FRI SAT".split(" ").map((name, i) => [name, i]),
]);

/**
 * The first value a field of a cron expression (already read by croner) lists twice: a value given twice
 * ("15,15"), or a value or range inside another range or `*` ("1-5,3", "MON-FRI,WED", "*,5"), as written,
 * or undefined. Croner and a CronJob keep one set of values a field, so the job runs once at it: harmless
 * to run, but more often a slip (15,45 meant) than meant; the stack config takes nothing twice (session 63).
 * An item with a step ('0-59/20', every 20 minutes) is left out: two steps meet by arithmetic (every 20 and
 * every 30 minutes at minute 0), as meant.
 */
function repeatedCronValue(fields: readonly string[]): { field: string; value: number; first: string; second: string } | undefined {
  for (const [i, { field, min, max }] of CRON_FIELDS.entries()) {
    const givenBy = new Map<number, string>();
    for (const item of fields[i].split(",")) {
      if (item.includes("/")) continue;
      const [from, to] = item === "*" ? [min, max] : item.split("-").map((end) => CRON_NAME_NUMBERS[end.toUpperCase()] ?? Number(end));
      for (let value = from; value <= (to ?? from); value++) {
        const earlier = givenBy.get(value);
        if (earlier !== undefined) return { field, value, first: earlier, second: item };
        givenBy.set(value, item);
      }
    }
  }
  return undefined;
}

/**
 * Whether a ClusterIssuer's name says it issues untrusted test certificates: "staging" anywhere
 * (letsencrypt-staging, letsencryptstaging, acme-staging-v02), or a dot- or dash-separated word stage,
 * stg, test, testing or fake (le-stg, letsencrypt-test; not "latest" or "contest").
 */
function isStagingIssuer(name: string): boolean {
  return name.includes("staging") || name.split(/[-.]/).some((word) => ["stage", "stg", "test", "testing", "fake"].includes(word));
}

/**
 * Whether a ClusterIssuer's name says it is a public ACME CA's: Let's Encrypt (letsencrypt-prod, le-prod,
 * lets-encrypt), ZeroSSL, Buypass or an `acme` issuer. A name is all the stack knows of the issuer; an
 * issuer named otherwise may be public too (the rule below then does not fire).
 */
function isPublicAcmeIssuer(name: string): boolean {
  const words = name.toLowerCase().split(/[-.]/);
  return /letsencrypt|lets-encrypt|zerossl|buypass/.test(name.toLowerCase()) || words.includes("acme") || words.includes("le");
}

/**
 * Top-level domains no public CA issues for: RFC 6761's special-use names (test, example, invalid,
 * localhost), mDNS's local (RFC 6762), .arpa (home.arpa, RFC 8375), .alt (RFC 9476), .onion (CA/B Forum:
 * EV only), ICANN's private-use internal (2024), and the private ones in common use, never delegated
 * (lan, home, corp, intranet, private, localdomain). The policy pack's private names (policies/lib/public-names.ts) and more.
 */
const NON_PUBLIC_TLDS: readonly string[] = ["test", "example", "invalid", "localhost", "local", "arpa", "alt", "onion", "internal", "lan", "home", "corp", "intranet", "private", "localdomain"];

/** What makes a host name (a valid one) uncertifiable by a public CA, or undefined: a single label, a non-public top-level domain, an IP address. */
function publicCaRefusal(host: string): string | undefined {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (isIP(name) !== 0) return "an IP address";
  const labels = name.split(".");
  if (labels.length === 1) return "a single label (no public domain)";
  const tld = labels[labels.length - 1];
  return NON_PUBLIC_TLDS.includes(tld) ? `under .${tld}, a special-use or private top-level domain` : undefined;
}

/** The cluster's own namespaces (default, kube-system, kube-public, kube-node-lease, any kube-*): its components run there. */
function isClusterNamespace(namespace: string): boolean {
  return namespace === "default" || namespace.startsWith("kube-");
}

/** A label name segment and a label value, as the API server checks them: at most 63 alphanumerics, '-', '_', '.', alphanumeric at both ends. */
const LABEL_SEGMENT = /^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/**
 * Equality label selectors, `key=value` joined by commas (as `kubectl -l` takes them), as matchLabels:
 * a key is a label name with an optional DNS-subdomain prefix (`app.kubernetes.io/name`), a value
 * is non-empty (an empty one would select pods whose label is blank, never what was meant); each key
 * once. Undefined when unset.
 */
function labelSelector(r: Reader, key: string): Record<string, string> | undefined {
  const value = r.string(key);
  if (value === undefined) return undefined;
  const labels: Record<string, string> = {};
  for (const item of value.split(",").map((s) => s.trim())) {
    const [name, labelValue, extra] = item.split("=").map((s) => s.trim());
    const slash = name.lastIndexOf("/");
    const [prefix, segment] = slash >= 0 ? [name.slice(0, slash), name.slice(slash + 1)] : [undefined, name];
    const validName = LABEL_SEGMENT.test(segment) && (prefix === undefined || DNS_SUBDOMAIN.test(prefix));
    if (extra !== undefined || labelValue === undefined || !validName || !LABEL_SEGMENT.test(labelValue)) {
      throw new ConfigError(
        key,
        r.stack,
        `must be label selectors key=value joined by commas (e.g. app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller; names and values of at most 63 letters, digits, '-', '_', '.'), got ${shown(item)}`,
      );
    }
    if (name in labels) throw new ConfigError(key, r.stack, `names the label ${shown(name)} twice`);
    labels[name] = labelValue;
  }
  return labels;
}

/**
 * Namespaces that belong to someone else: the cluster's own (default, kube-*, as the policy pack's
 * protected-namespaces), the ingress controller's (configured, or the usual ingress-nginx) and
 * cert-manager's. The owner's description, or undefined for a namespace the platform may take.
 */
function otherOwnerOf(namespace: string, ingressControllerNamespace: string): string | undefined {
  if (isClusterNamespace(namespace)) return "the cluster (default and kube-* hold its own components)";
  if (namespace === ingressControllerNamespace) return "the ingress controller (trading:ingressControllerNamespace)";
  if (namespace === "ingress-nginx") return "the NGINX ingress controller";
  if (namespace === "cert-manager") return "cert-manager";
  return undefined;
}

/**
 * Replicas of one service: its per-service override (already checked against the catalog's
 * maximum), else the stack-wide `replicas` (0 = the target's default: the catalog's count on
 * Kubernetes, 1 on Docker), capped by the catalog's maximum so singletons stay single. A stack may
 * go below the catalog's count (a single-node cluster); the policy pack's service-min-replicas is
 * what keeps prod at two or more. On Kubernetes this is also the autoscaler's floor.
 */
export function replicasOf(target: Target, scaling: ServiceScaling, stackReplicas: number, override?: number): number {
  if (override !== undefined) return override;
  const wanted = stackReplicas > 0 ? stackReplicas : target === "kubernetes" ? scaling.replicas : 1;
  return Math.min(wanted, scaling.maxReplicas);
}

/** Every key the program reads, so the loader can fetch them all from `pulumi.Config` (stacks/schema.ts). */
export const configKeys: readonly string[] = schemaKeys;

/** Credentials users provide with `pulumi config set --secret`; never generated, never defaulted. */
export const secretConfigKeys = [
  "binanceApiKey",
  "binanceSecretKey",
  "telegramBotToken",
  "smtpPassword",
  "paymentProcessorApiKey",
  "paymentWebhookSecret",
  "tlsCertificate",
  "tlsPrivateKey",
  "registryPassword",
] as const;
export type SecretConfigKey = (typeof secretConfigKeys)[number];

/**
 * The rules that depend on which secrets are set (the parser sees no secret): call it with the parsed
 * config and the secrets read with `getSecret` (only whether each is set matters).
 */
export function checkSecretConfig(config: StackConfig, secrets: Partial<Record<SecretConfigKey, unknown>>): void {
  const { stack } = config;
  const has = (key: SecretConfigKey) => secrets[key] !== undefined;
  if (config.trading.mode === "live") {
    for (const key of ["binanceApiKey", "binanceSecretKey"] as const) {
      if (!has(key)) throw new ConfigError(key, stack, `is required when tradingMode is live (pulumi config set --secret ${CONFIG_NAMESPACE}:${key} ...)`);
    }
  }
  // The card processor's key and its webhook signing secret only work as a pair.
  if (has("paymentProcessorApiKey") !== has("paymentWebhookSecret")) {
    const missing = has("paymentProcessorApiKey") ? "paymentWebhookSecret" : "paymentProcessorApiKey";
    throw new ConfigError(missing, stack, `is required together with the other payment secret (pulumi config set --secret ${CONFIG_NAMESPACE}:${missing} ...)`);
  }
  // The edge's (Docker) or the Ingress's (Kubernetes) certificate is used only as a pair.
  if (has("tlsCertificate") !== has("tlsPrivateKey")) {
    const [missing, other] = has("tlsCertificate") ? ["tlsPrivateKey", "tlsCertificate"] : ["tlsCertificate", "tlsPrivateKey"];
    throw new ConfigError(missing, stack, `is required together with ${other} (pulumi config set --secret ${CONFIG_NAMESPACE}:${missing} ...)`);
  }
  // The stack would write the TLS Secret and cert-manager's ingress-shim would issue into it too.
  if (config.target === "kubernetes" && has("tlsCertificate") && config.kubernetes.certIssuer !== undefined) {
    throw new ConfigError("certIssuer", stack, "must not be set with the tlsCertificate/tlsPrivateKey secrets: cert-manager and the stack would both own the TLS Secret");
  }
  // The push logs in only with both (components/platform.ts): one alone would be ignored.
  if (config.registryUsername !== undefined && !has("registryPassword")) {
    throw new ConfigError("registryPassword", stack, `is required together with registryUsername (pulumi config set --secret ${CONFIG_NAMESPACE}:registryPassword ...)`);
  }
  if (config.registryUsername === undefined && has("registryPassword")) {
    throw new ConfigError("registryUsername", stack, `is required together with the registryPassword secret (pulumi config set ${CONFIG_NAMESPACE}:registryUsername <user>)`);
  }
  // notification-service logs in to the relay only with a user (SMTP_USER; none: no AUTH at all): a password alone
  // would be ignored, and a user alone would log in with an empty password, either failing at the first e-mail.
  if (config.smtp.username !== undefined && !has("smtpPassword")) {
    throw new ConfigError("smtpPassword", stack, `is required together with smtpUsername (pulumi config set --secret ${CONFIG_NAMESPACE}:smtpPassword ...)`);
  }
  if (config.smtp.username === undefined && has("smtpPassword")) {
    throw new ConfigError("smtpUsername", stack, `is required together with the smtpPassword secret (pulumi config set ${CONFIG_NAMESPACE}:smtpUsername <login>)`);
  }
}

/**
 * Whether a stack is for development (`dev`, or a name beginning `dev-`): there the credentials'
 * placeholders stay usable (the policy pack reports them, advisory under dev.json); every other
 * stack (prod, local-k8s, a stack of any other name) is held to real credentials.
 */
export function isDevStack(stack: string): boolean {
  return stack === "dev" || stack.startsWith("dev-");
}

/** Whether a stack is a production one (`prod`, or a name beginning `prod-`): Kubernetes only, held to policies/config/prod.json. */
export function isProdStack(stack: string): boolean {
  return stack === "prod" || stack.startsWith("prod-");
}

/**
 * The credentials' own values (the loader reads them decrypted from the stack's configuration; they
 * go nowhere else): one set blank (`pulumi config set --secret trading:binanceApiKey ""`) is refused,
 * as it would count as set, satisfy "required" (live trading's exchange keys) and reach the service
 * as an empty credential that fails at its first use. On every stack but dev (`isDevStack`), so is
 * one holding a literal the deployment guide publishes (its placeholders for the exchange keys and the
 * bot token, its passwords) or a well-known weak value (`password`, `changeme`, ...): the lists are the
 * policy pack's (catalog/credentials.ts), so the config refuses before the preview what
 * `no-default-credentials` would find in the resources after it. A published literal is named (it is
 * public); a weak value is not echoed.
 */
export function checkSecretValues(stack: string, values: Partial<Record<SecretConfigKey, string>>): void {
  for (const key of secretConfigKeys) {
    const value = values[key];
    if (value === undefined) continue;
    if (value.trim() === "") {
      throw new ConfigError(
        key,
        stack,
        `is set but blank: set the credential (pulumi config set --secret ${CONFIG_NAMESPACE}:${key} <value>) or remove the key (pulumi config rm ${CONFIG_NAMESPACE}:${key})`,
      );
    }
    const published = isDevStack(stack) ? [] : guideSecretsIn(value);
    if (published.length > 0 || (!isDevStack(stack) && isWeakValue(value))) {
      const what = published.length > 0 ? `holds the deployment guide's published placeholder "${published[0]}"` : "is a weak, well-known value";
      throw new ConfigError(
        key,
        stack,
        `${what}, which anyone can try: set the real credential (pulumi config set --secret ${CONFIG_NAMESPACE}:${key} <value>); placeholders are accepted on the dev stack only`,
      );
    }
    const shape = credentialShapeProblem(key, value);
    if (shape !== undefined) {
      throw new ConfigError(key, stack, `${shape}; set it again (pulumi config set --secret ${CONFIG_NAMESPACE}:${key} <value>)`);
    }
  }
  // The halves of one issuer's pair are never equal: the same value in both is one of them pasted twice, and the
  // exchange or the processor refuses every signed request (or a webhook's signature is checked against the API key).
  for (const [first, second] of DISTINCT_CREDENTIAL_PAIRS) {
    const [a, b] = [values[first], values[second]];
    if (a !== undefined && b !== undefined && a.trim() !== "" && a === b) {
      throw new ConfigError(
        second,
        stack,
        `holds the same value as ${first}, its pair's other half (one of them pasted twice): set each to its own credential (pulumi config set --secret ${CONFIG_NAMESPACE}:${second} <value>); the values are not shown here`,
      );
    }
  }
}

/** Credentials issued as a pair of different values (a key and its secret, a processor's key and its webhook signing secret). */
const DISTINCT_CREDENTIAL_PAIRS: readonly (readonly [SecretConfigKey, SecretConfigKey])[] = [
  ["binanceApiKey", "binanceSecretKey"],
  ["paymentProcessorApiKey", "paymentWebhookSecret"],
];

/**
 * The longest credential values: one line (an exchange key, a token, a password, a registry's JSON key of about
 * 2,500 characters) and a PEM certificate chain or key: far above any real one, so what is longer is something
 * else pasted (a file's content). Unbounded, a value reached a container's environment on Kubernetes (files on
 * Docker), where one variable past 128 KiB (Linux's MAX_ARG_STRLEN) fails the container's start with E2BIG.
 */
const CREDENTIAL_MAX_LENGTH = 4_096;
const PEM_MAX_LENGTH = 65_536;
/** PEM blocks a TLS certificate / private key secret must hold (nginx and the Ingress read them as they are). */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const PEM_PRIVATE_KEY = /-----BEGIN (RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (RSA |EC )?PRIVATE KEY-----/;

/**
 * What is wrong with the shape of a credential's value (never quoting it), on every stack (session 50):
 * a one-line credential (an exchange key, a token, a password) with a line break, a tab or another
 * control character, or white space at either end (a newline pasted or read from a file with it) reaches
 * the service as it is and fails at its first use, far from here; the TLS pair must be PEM: the
 * certificate a CERTIFICATE block and no private key (the certificate is what the edge hands every
 * client), the key an unencrypted PRIVATE KEY block (nginx would ask for a passphrase no one types).
 */
function credentialShapeProblem(key: SecretConfigKey, value: string): string | undefined {
  const pem = key === "tlsCertificate" || key === "tlsPrivateKey";
  const maxLength = pem ? PEM_MAX_LENGTH : CREDENTIAL_MAX_LENGTH;
  if (value.length > maxLength) return `is ${value.length} characters long, more than ${pem ? "a certificate chain or key" : "a credential"} takes (at most ${maxLength}: a file's whole content pasted?)`;
  // A PEM block's lines end in line breaks; any other control or invisible character is no part of it.
  if (pem && new RegExp(UNSHOWABLE.source).test(value.replace(/[\r\n\t]/g, ""))) return "holds a control or invisible character besides line breaks, no part of a PEM block";
  if (key === "tlsCertificate") {
    if (!PEM_CERTIFICATE.test(value)) return "is not a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)";
    if (/PRIVATE KEY-----/.test(value)) return "holds a private key beside the certificate: the private key belongs in tlsPrivateKey alone";
    return undefined;
  }
  if (key === "tlsPrivateKey") {
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(value)) return "is an encrypted private key, which nginx would ask a passphrase for at start: give it unencrypted (openssl pkey -in <key> -out <plain key>)";
    if (!PEM_PRIVATE_KEY.test(value)) return "is not a PEM private key (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)";
    return undefined;
  }
  if (new RegExp(UNSHOWABLE.source).test(value)) return "holds a line break, a tab or another control or invisible character (pasted with it?), which the service would send as part of the credential";
  if (value !== value.trim()) return "has white space at its start or end (pasted with it?), which the service would send as part of the credential";
  return undefined;
}

/**
 * The keys a stack sets in the project's namespace, judged before anything is read: a key the
 * program does not read is refused (the CLI passes undeclared keys through, so a misspelt
 * `trading:publishAdminPort: false` would leave the admin ports published without a word), and a
 * credential set without `--secret` is refused (its value sits readable in Pulumi.<stack>.yaml, in
 * git as often as not), and a setting that is no credential set with `--secret` is refused (read as
 * plain text, it would lose its secrecy silently). `setKeys` are full keys (`trading:replicas`, `kubernetes:context`);
 * `encryptedKeys` those of them set with `--secret`.
 */
export function checkConfigKeys(stack: string, setKeys: readonly string[], encryptedKeys: readonly string[]): void {
  const prefix = `${CONFIG_NAMESPACE}:`;
  const known = [...configKeys, ...secretConfigKeys];
  const encrypted = new Set(encryptedKeys);
  for (const full of setKeys) {
    if (!full.startsWith(prefix)) {
      checkOtherNamespace(stack, full);
      continue;
    }
    const key = full.slice(prefix.length);
    if (!known.includes(key)) {
      const nearest = nearestKey(key, known);
      throw new ConfigError(
        escapeUnshowable(key.length > SHOWN_MAX ? `${key.slice(0, SHOWN_MAX)}...` : key),
        stack,
        "is not a setting of this program (a misspelt key is otherwise ignored and its default applies); " +
          (nearest ? `did you mean ${prefix}${nearest}?` : "the settings are declared in Pulumi.yaml, the secrets listed in the README (Stack configuration)") +
          // A credential's misspelt key set in plain text holds the credential in the stack's file already: say so with the fix.
          (nearest !== undefined && (secretConfigKeys as readonly string[]).includes(nearest) && !encrypted.has(full)
            ? ` It is a credential: set it with 'pulumi config set --secret ${prefix}${nearest} <value>', remove this key, and revoke the value it holds in plain text`
            : ""),
      );
    }
    // The program reads a setting with get(): a value set with --secret would leave the secret
    // marking behind and reach resources, state and outputs in plain text, without a word.
    if (!(secretConfigKeys as readonly string[]).includes(key) && encrypted.has(full)) {
      throw new ConfigError(
        key,
        stack,
        `is set with --secret but is not a credential: the program would read it as plain text into resources and outputs; set it again without --secret ('pulumi config set ${full} <value>')`,
      );
    }
    if ((secretConfigKeys as readonly string[]).includes(key) && !encrypted.has(full)) {
      throw new ConfigError(
        key,
        stack,
        `is a credential stored in plain text in the stack's configuration; set it again with 'pulumi config set --secret ${full} <value>'`,
      );
    }
  }
}

/**
 * Provider settings that carry a credential inside a structured value, and how to see one there: a kubeconfig's
 * client key, token or password (not a path to the file, which is how a kubeconfig is usually given), a registry
 * login's password. Set without --secret they sit in plain text in Pulumi.<stack>.yaml, as a trading credential would.
 */
const PROVIDER_CREDENTIAL_FIELDS: Readonly<Record<string, RegExp>> = {
  "kubernetes:kubeconfig": /(client-key-data|id-token|refresh-token|token|password)"?\s*:\s*"?[^\s"{}[\],]/,
  "docker:registryAuth": /"password"\s*:\s*"[^"]/,
};

/**
 * The values of every key set without --secret, in any namespace (checkConfigKeys judges the names): one holding a
 * credential by its issuer's shape (CREDENTIAL_SHAPES), or a provider setting holding its credential field
 * (PROVIDER_CREDENTIAL_FIELDS), is refused without showing it: it sits readable in Pulumi.<stack>.yaml (and git).
 * The project's own settings are left to the parser (Reader), which refuses the same shapes before anything is read.
 */
export function checkPlainConfigValues(stack: string, values: Readonly<Record<string, string>>, encryptedKeys: readonly string[]): void {
  const encrypted = new Set(encryptedKeys);
  for (const [full, value] of Object.entries(values)) {
    // The project's own settings are the parser's (Reader.text refuses the same shapes, with the advice for them).
    if (encrypted.has(full) || typeof value !== "string" || full.startsWith(`${CONFIG_NAMESPACE}:`)) continue;
    const shape = credentialShapeIn(value) ?? (PROVIDER_CREDENTIAL_FIELDS[full]?.test(value) ? "a credential field" : undefined);
    if (shape === undefined) continue;
    const colon = full.indexOf(":");
    const [namespace, key] = colon > 0 ? [full.slice(0, colon), full.slice(colon + 1)] : [CONFIG_NAMESPACE, full];
    throw new ConfigError(
      escapeUnshowable(key.slice(0, SHOWN_MAX)),
      stack,
      `is set in plain text and holds what looks like a credential (${shape}), which sits readable in the stack's configuration file: set it again with 'pulumi config set --secret ${escapeUnshowable(full.slice(0, SHOWN_MAX))} ...' (the provider reads it decrypted), and revoke one that was committed; the value is not shown here`,
      escapeUnshowable(namespace.slice(0, SHOWN_MAX)),
    );
  }
}

/**
 * Namespaces whose keys something reads: the project's, the providers the program runs (their
 * default providers read `kubernetes:context`, `docker:host`, ...) and the engine's own (`pulumi:tags`).
 */
export const READ_CONFIG_NAMESPACES: readonly string[] = [CONFIG_NAMESPACE, "kubernetes", "docker", "random", "pulumi"];

/**
 * A key outside the project's namespace: its owner judges its name, but a namespace nothing reads (a
 * misspelt `tradng:replicas`, `Trading:replicas`, an `aws:region` for a provider the program never
 * runs) would be ignored without a word, as a misspelt key of the project's is (session 50).
 */
function checkOtherNamespace(stack: string, full: string): void {
  const colon = full.indexOf(":");
  const namespace = colon > 0 ? full.slice(0, colon) : "";
  if (READ_CONFIG_NAMESPACES.includes(namespace)) return;
  const key = colon > 0 ? full.slice(colon + 1) : full;
  const nearest = nearestKey(namespace, READ_CONFIG_NAMESPACES);
  const shownKey = escapeUnshowable(key.length > SHOWN_MAX ? `${key.slice(0, SHOWN_MAX)}...` : key);
  throw new ConfigError(
    shownKey,
    stack,
    `is in a namespace nothing of this program reads, so it would be ignored and its default apply; ` +
      (nearest ? `did you mean ${nearest}:${shownKey}? ` : "") +
      `the program reads ${READ_CONFIG_NAMESPACES.map((n) => `${n}:`).join(", ")} (remove it with 'pulumi config rm ${escapeUnshowable(full.slice(0, SHOWN_MAX))}')`,
    escapeUnshowable(namespace.slice(0, SHOWN_MAX)),
  );
}

/** The known key closest to a misspelt one (stacks/nearest.ts). */
const nearestKey = nearestName;

/**
 * What an SMTP relay address reaches instead of a relay, or undefined for an ordinary host: a cloud
 * metadata address (the node's credentials; on Docker nothing filters egress), the rest of link-local,
 * loopback (the container itself, `localhost` too), the unspecified "this network", multicast or
 * broadcast. smtpHost is a host name or IPv4 address (checked before), so IPv6 never reaches here.
 */
function unusableRelay(host: string): string | undefined {
  if (isLocalhostName(host)) return "loopback (the notification-service container itself)";
  const name = host.toLowerCase().replace(/\.$/, "");
  if (isIP(name) !== 4) return undefined;
  if (Number(name.split(".")[0]) === 127) return "loopback (the notification-service container itself)";
  return offNetworkIPv4(name);
}

/**
 * The containers a Docker stack attaches to its network (components/: one per replica of each service, one per
 * service's migration and scheduled job, one per enabled datastore, Prometheus, Grafana, and the Nginx edge in front
 * of an entry point); a rollout adds none (the provider replaces a container delete-before-create).
 */
export function dockerContainerCount(
  services: readonly ServiceDefinition[],
  replicas: Readonly<Record<string, number>>,
  datastores: Readonly<Record<DataComponent, DatastoreConfig>>,
  prometheus: boolean,
  grafana: boolean,
): number {
  const serviceContainers = services.reduce((n, s) => n + (replicas[s.name] ?? 1) + (s.preDeployJob ? 1 : 0) + (s.scheduledJob ? 1 : 0), 0);
  const stores = dataComponents.filter((d) => datastores[d].enabled).length;
  return serviceContainers + stores + (prometheus ? 1 : 0) + (grafana ? 1 : 0) + (services.some((s) => s.entryPoint) ? 1 : 0);
}

/** A loopback (127/8, ::1) or link-local (169.254/16, fe80::/10) address, already checked as an IP address. */
function isLoopbackOrLinkLocal(address: string): boolean {
  if (isIP(address) === 4) return address.startsWith("127.") || address.startsWith("169.254.");
  // The URL parser writes an IPv6 address canonically (zeros compressed, lower case): 0:0:0:0:0:0:0:1 is ::1.
  let host: string;
  try {
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return false; // no address the URL parser writes (a zone id): judged by the unicast rule before
  }
  return host === "::1" || (!host.startsWith("::") && (parseInt(host.split(":")[0], 16) & 0xffc0) === 0xfe80);
}

/** An IPv4 CIDR (already checked as one) wholly inside an RFC 1918 range. */
function isPrivateCidr(cidr: string): boolean {
  const [address, bits] = cidr.split("/");
  const [a, b] = address.split(".").map(Number);
  const prefix = Number(bits);
  return (a === 10 && prefix >= 8) || (a === 172 && b >= 16 && b <= 31 && prefix >= 12) || (a === 192 && b === 168 && prefix >= 16);
}

/** The prefix length of an address or CIDR already checked as one (an address is a /32 or /128). */
function prefixOf(entry: string): number {
  const [address, bits] = entry.split("/");
  return bits !== undefined ? Number(bits) : isIP(address) === 4 ? 32 : 128;
}

/** `a.b.c.d/n` (family 4, n in 8..32) or an IPv6 CIDR (n in 16..128); n with leading zeros too (zeroPaddedPrefixProblem names them). */
function isCidr(v: string, family: 4 | 6): boolean {
  const [addr, bits, extra] = v.split("/");
  if (extra !== undefined || bits === undefined || !/^\d+$/.test(bits) || isIP(addr) !== family) return false;
  const n = Number(bits);
  return family === 4 ? n >= 8 && n <= 32 : n >= 16 && n <= 128;
}

/**
 * A CIDR whose address has bits set past its prefix length, and the network it names (catalog/addresses.ts
 * hostBitsNetwork, the kit's rule too); `hostMeant`: the key also takes a single address, which may be what was meant.
 */
function hostBitsProblem(cidr: string, network: string, hostMeant: boolean): string {
  const [address, prefix] = cidr.split("/");
  return `${shown(cidr)} has address bits set past its /${prefix} prefix, which are ignored: it is the network ${network}; write ${network}${hostMeant ? ` (or ${address} alone, for the one host)` : ""}`;
}

/**
 * A CIDR (already checked as one) whose prefix length has leading zeros: proxy-addr takes /016 for /16,
 * a reader taking a leading 0 for octal for /14 (catalog/addresses.ts zeroPaddedPrefix, the kit's rule too).
 */
function zeroPaddedPrefixProblem(cidr: string): string {
  return `${shown(cidr)}: its prefix length /${cidr.split("/")[1]} has a leading zero, which some readers take for octal: write /${zeroPaddedPrefix(cidr)}`;
}

/**
 * One JSON token that matters to an object's names: a string (quotes and escapes kept), a bracket or
 * a colon. Everything else (numbers, literals, commas, white space) is passed over; each alternative
 * consumes what the next cannot start, so a scan is linear in the text.
 */
const JSON_NAME_TOKEN = /"(?:[^"\\]|\\.)*"|[{}[\]:]/g;

/**
 * The first name an object of a JSON text (already parsed by JSON.parse, so well-formed) gives twice,
 * with the names of the objects it sits in, or undefined. JSON.parse keeps the last value of
 * `{"a":1,"a":2}` without a word (RFC 8259 §4 leaves repeated names to the parser), and a reviver sees
 * only what was kept, so the text is scanned: iteratively (a value nested 200,000 deep is no recursion),
 * each string decoded by JSON.parse itself, so "a" and "\u0061" are one name, as in the parsed value.
 * (The `yaml` package, the one strict parser installed, a devDependency, stops building its tree past
 * about 800 levels, where a repeat would go unseen.)
 */
function repeatedJsonName(text: string): { name: string; within: string[] } | undefined {
  // One entry per open object (its names so far) or array (none), with the name it is the value of.
  const open: { names: Set<string> | undefined; name: string | undefined }[] = [];
  let lastString: string | undefined;
  let valueOf: string | undefined; // the name just read, whose value comes next
  for (const [token] of text.matchAll(JSON_NAME_TOKEN)) {
    if (token === ":") {
      const names = open.at(-1)?.names;
      if (names !== undefined && lastString !== undefined) {
        if (names.has(lastString)) {
          return { name: lastString, within: open.map((o) => o.name).filter((n): n is string => n !== undefined) };
        }
        names.add(lastString);
      }
      valueOf = lastString;
      continue;
    }
    if (token === "{" || token === "[") open.push({ names: token === "{" ? new Set() : undefined, name: valueOf });
    else if (token === "}" || token === "]") open.pop();
    else lastString = JSON.parse(token) as string;
    valueOf = undefined;
  }
  return undefined;
}
