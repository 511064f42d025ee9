/**
 * `trading:serviceSettings` and `trading:postgresMaxConnections`, as pure functions of the parsed
 * values (stacks/config.ts throws their problems as ConfigErrors naming the key and the stack):
 *
 * - the service variables a stack may set (catalog/service-settings.ts: those another part of the
 *   platform depends on, each PostgreSQL user's POSTGRES_POOL_MAX and POSTGRES_LOCK_WAIT_MS, each Kafka
 *   consumer's KAFKA_SESSION_TIMEOUT_MS), each in its schema's range;
 * - the cross-service orders of catalog settingRelations (SETTING_RELATIONS, and the kit's
 *   POSTGRES_LOCK_WAIT_MS of each routed PostgreSQL user and of each Kafka consumer), judged on the values the services will
 *   run with (the stack's, else the schema's default): user-management's ACCESS_TOKEN_TTL_S over the
 *   gateway's ACCESS_TOKEN_MAX_AGE_S, a wait over the gateway's PROXY_TIMEOUT_MS, ...;
 * - the PostgreSQL connections the stack can open at once against the server's max_connections, and
 *   the memory PostgreSQL can use at that max_connections against the server's memory limit.
 */
import { kubernetesPostgresPool, postgresMemoryNeed, sizingOf, type MemoryNeed, type ServiceDefinition } from "../catalog";
import { consumesKafka, EXTRA_POSTGRES_POOLS, KAFKA_SESSION_TIMEOUT_MS, MIGRATION_JOB_POOL_MIN, POSTGRES_LOCK_WAIT_MS, POSTGRES_POOL_MAX, SERVICE_SETTINGS, settingRelations, type SettingBounds, type SettingRef, smallerKeys, usesPostgres } from "../catalog/service-settings";
import { didYouMean, nearestName } from "./nearest";
import { escapeUnshowable } from "./unshowable";

/** The variables the stack sets, by service (only those it sets: the rest keep the schema's default). */
export type ServiceSettings = Record<string, Record<string, number>>;

/**
 * Connections kept for people and tools beside the platform's pools: PostgreSQL's own
 * superuser_reserved_connections (3) and an operator's psql, a monitoring probe, a restore (7).
 */
export const POSTGRES_ADMIN_HEADROOM = 10;
/** Connections of one backup run (pg_dump, and its run recorder's psql) and of the ClickHouse backup's recorder. */
const BACKUP_CONNECTIONS = 3;

/** The settings the stack may give `def`, with their bounds. */
export function settingsOf(def: ServiceDefinition): Record<string, SettingBounds> {
  const own = (SERVICE_SETTINGS as Partial<Record<string, Record<string, SettingBounds>>>)[def.name] ?? {};
  return { ...(usesPostgres(def) ? { POSTGRES_POOL_MAX, POSTGRES_LOCK_WAIT_MS } : {}), ...(consumesKafka(def) ? { KAFKA_SESSION_TIMEOUT_MS } : {}), ...own };
}

/**
 * A value as the stack gave it: a text quoted, its control characters escaped (a NUL from `"\u0000"`
 * in the JSON was printed raw into the error), and its invisible ones (JSON.stringify leaves a `"\u202e"`
 * written as a JSON escape as it is, which reordered the message around it), a number too large for JSON
 * (1e309 parses as Infinity) as such.
 */
const quoted = (v: unknown) =>
  typeof v === "string" ? `'${escapeUnshowable(JSON.stringify(v).slice(1, -1))}'` : typeof v === "number" && !Number.isFinite(v) ? String(v) : JSON.stringify(v);

/** " (did you mean 'X'?)" for a variable close to one of the service's settings (a typo), else "". */
function nearMiss(key: string, names: readonly string[]): string {
  const nearest = key.length <= 200 ? nearestName(key, names) : undefined;
  return nearest !== undefined ? ` (did you mean '${nearest}'?)` : "";
}

/** What is wrong with the parsed `trading:serviceSettings` object, or undefined (then `raw` is ServiceSettings). */
export function serviceSettingsProblem(raw: Record<string, unknown>, catalog: readonly ServiceDefinition[], deployed: readonly ServiceDefinition[]): string | undefined {
  for (const [name, vars] of Object.entries(raw)) {
    const def = catalog.find((s) => s.name === name);
    if (!def) return `${quoted(name)} is not a service of the catalog${didYouMean(name, catalog.map((s) => s.name))}`;
    if (!deployed.includes(def)) return `${quoted(name)} is not deployed (disabledServices, or a datastore it requires is off): its settings would apply to nothing`;
    const allowed = settingsOf(def);
    if (vars === null || typeof vars !== "object" || Array.isArray(vars)) {
      return `settings of ${quoted(name)} must be an object of variables, e.g. {${JSON.stringify(name)}: {${JSON.stringify(Object.keys(allowed)[0] ?? "VARIABLE")}: 10}}`;
    }
    for (const [key, value] of Object.entries(vars as Record<string, unknown>)) {
      // An own setting only: "__proto__", "constructor" or "toString" found Object.prototype's, passed as bounds that bound nothing.
      const bounds = Object.hasOwn(allowed, key) ? allowed[key] : undefined;
      if (!bounds) {
        const names = Object.keys(allowed);
        return `${quoted(key)} is not a setting of ${name} the stack sets (${names.length ? `its settings: ${names.join(", ")}` : "it has none"}); the others keep the service's own defaults${nearMiss(key, names)}`;
      }
      if (typeof value !== "number" || !Number.isInteger(value) || value < bounds.minimum || value > bounds.maximum) {
        return `${name} ${key} must be an integer between ${bounds.minimum} and ${bounds.maximum} (the service refuses any other at start), got ${quoted(value)}`;
      }
      if (key === "POSTGRES_POOL_MAX" && def.preDeployJob && value < MIGRATION_JOB_POOL_MIN) {
        return `${name} ${key} must be at least ${MIGRATION_JOB_POOL_MIN}, got ${value}: its migration job takes the service's pool, holds its run lock on one connection and migrates on another (with ${value} it fails waiting for the second)`;
      }
    }
  }
  return undefined;
}

/** The value `service` runs `key` with: the stack's, else its schema's default. */
function valueOf(settings: ServiceSettings, service: string, key: string, def?: ServiceDefinition): number {
  const set = settings[service]?.[key];
  if (set !== undefined) return set;
  const bounds = (def ? settingsOf(def) : (SERVICE_SETTINGS as Record<string, Record<string, SettingBounds>>)[service])?.[key];
  if (!bounds) throw new Error(`catalog/service-settings.ts declares no setting ${key} of ${service}`);
  return bounds.default;
}

function described(settings: ServiceSettings, ref: SettingRef, deployed: readonly ServiceDefinition[]): string {
  if ("fixed" in ref) return `${ref.name}`;
  const value = valueOf(settings, ref.service, ref.key, deployed.find((s) => s.name === ref.service));
  return `${ref.service} ${ref.key} (${value}${settings[ref.service]?.[ref.key] === undefined ? ", its default" : ""})`;
}

/**
 * The first cross-service order the values break, naming every variable with its value, or undefined.
 * A sum (waits one after another in one request) is named part by part, then its total. Relations
 * with a service not deployed are skipped.
 */
export function crossServiceProblem(settings: ServiceSettings, deployed: readonly ServiceDefinition[]): string | undefined {
  const defOf = (service: string) => deployed.find((s) => s.name === service);
  for (const rel of settingRelations(deployed)) {
    const keys = smallerKeys(rel);
    if (!keys.every((k) => defOf(k.service)) || ("service" in rel.larger && !defOf(rel.larger.service))) continue;
    const mine = keys.reduce((n, k) => n + valueOf(settings, k.service, k.key, defOf(k.service)), rel.plus?.ms ?? 0);
    const theirs = "fixed" in rel.larger ? rel.larger.fixed : valueOf(settings, rel.larger.service, rel.larger.key, defOf(rel.larger.service));
    if (rel.strict ? mine < theirs : mine <= theirs) continue;
    const parts = [...keys.map((k) => described(settings, k, deployed)), ...(rel.plus ? [`${rel.plus.name} (${rel.plus.ms})`] : [])];
    const smaller = parts.length > 1 ? `${parts.join(" + ")} = ${mine}` : parts[0];
    return `${smaller} must be ${rel.strict ? "below" : "at most"} ${described(settings, rel.larger, deployed)}: ${rel.why}`;
  }
  return undefined;
}

/**
 * The POSTGRES_POOL_MAX the stack config passes where the stack sets none: on Kubernetes each
 * horizontally scaled PostgreSQL user's replica runs with catalog/sizing.ts KUBERNETES_REPLICA_POSTGRES_POOL
 * (its jobs too: they take the service's environment); elsewhere none (the service's default).
 */
export function postgresPoolDefaults(target: "docker" | "kubernetes", deployed: readonly ServiceDefinition[], settings: ServiceSettings): Record<string, number> {
  if (target !== "kubernetes") return {};
  const pools: Record<string, number> = {};
  for (const def of deployed.filter(usesPostgres)) {
    const pool = kubernetesPostgresPool(def);
    if (pool !== undefined && settings[def.name]?.POSTGRES_POOL_MAX === undefined) pools[def.name] = pool;
  }
  return pools;
}

export interface ConnectionNeed {
  total: number;
  /** What makes up the total, largest first, for the refusal. */
  parts: string[];
}

/**
 * The PostgreSQL connections the stack can hold at once: every replica's pools (POSTGRES_POOL_MAX,
 * plus payment-service's PAYMENT_CHARGE_LOCK_CONNECTIONS pool), counted on Kubernetes at the
 * autoscaler's ceiling plus the rollout's one surge pod (components/runtime/kubernetes/workloads.ts:
 * RollingUpdate maxSurge 1, maxUnavailable 0; a singleton is Recreate), a horizontally scaled
 * service's pool there its replica's (postgresPoolDefaults) where the stack sets none; a migration job and each
 * scheduled job's run with their service's pool (a migration runs beside the old fleet during an
 * update); the backups on Kubernetes; POSTGRES_ADMIN_HEADROOM.
 * On Docker a rollout adds none: the repo's provider replaces a container delete-before-create
 * (tools/providers/docker/container.go `DeleteBeforeReplace`, its names are fixed), so the old one has
 * stopped, and its pools closed, before its replacement starts (provider_test.go checks a replacing Diff says so).
 */
export function postgresConnectionNeed(target: "docker" | "kubernetes", deployed: readonly ServiceDefinition[], replicas: Record<string, number>, settings: ServiceSettings): ConnectionNeed {
  const parts: [number, string][] = [];
  const sized = postgresPoolDefaults(target, deployed, settings);
  for (const def of deployed.filter(usesPostgres)) {
    const extraKey = EXTRA_POSTGRES_POOLS[def.name as keyof typeof EXTRA_POSTGRES_POOLS];
    const pool = (sized[def.name] ?? valueOf(settings, def.name, "POSTGRES_POOL_MAX", def)) + (extraKey ? valueOf(settings, def.name, extraKey, def) : 0);
    const scaling = sizingOf(def).scaling;
    const count = target === "kubernetes" ? Math.max(scaling.maxReplicas, replicas[def.name]) + (def.singleton ? 0 : 1) : replicas[def.name];
    const poolWords = `POSTGRES_POOL_MAX${extraKey ? ` + ${extraKey}` : ""}`;
    parts.push([pool * count, `${def.name} ${count} x ${pool} (${poolWords}; ${target === "kubernetes" ? "the autoscaler's most replicas and a rollout's surge pod" : "replicas"})`]);
    if (def.preDeployJob) parts.push([pool, `${def.name}'s migration job ${pool}`]);
    if (def.scheduledJob) parts.push([pool, `${def.name}'s ${def.scheduledJob.name} job ${pool}`]);
  }
  if (target === "kubernetes") parts.push([BACKUP_CONNECTIONS, `the backups ${BACKUP_CONNECTIONS}`]);
  parts.push([POSTGRES_ADMIN_HEADROOM, `admin headroom ${POSTGRES_ADMIN_HEADROOM}`]);
  parts.sort((a, b) => b[0] - a[0]);
  return { total: parts.reduce((n, [c]) => n + c, 0), parts: parts.map(([, words]) => words) };
}

/**
 * The memory PostgreSQL can use at `maxConnections` when it exceeds the server's memory limit,
 * `limitGi` (then the kernel kills a backend at the limit, and PostgreSQL ends every session to
 * restart), else undefined.
 */
export function postgresMemoryExcess(maxConnections: number, limitGi: number): MemoryNeed | undefined {
  const need = postgresMemoryNeed(maxConnections);
  return need.totalMiB > limitGi * 1024 ? need : undefined;
}
