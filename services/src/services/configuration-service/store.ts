/**
 * Versioned configuration store: PostgreSQL is the source of truth (config_entries +
 * config_versions, migration 0010), Dragonfly caches each namespace snapshot (cache-aside,
 * deleted after every committed write), and every change is published on the namespace channel.
 */
import type { PoolClient } from "pg";
import type { Redis } from "ioredis";
import { conflict, notFound, badRequest, findUnstorableText, HttpError, type PostgresClient } from "../../kit";

import { changeChannel, type ConfigChange } from "./notify";

export const NAMESPACE_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$";
export const KEY_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$";
/** Key space of the per-key change lock (first half of the two-int advisory lock key; "cf"). */
const KEY_LOCK_SPACE = 0x6366;

export interface Entry {
  value: unknown;
  version: number;
  updatedAt: string;
  updatedBy: string;
}
export interface Snapshot {
  namespace: string;
  entries: Record<string, Entry>;
}
export interface VersionRow {
  version: number;
  operation: "set" | "delete" | "rollback";
  oldValue: unknown;
  newValue: unknown;
  changedBy: string;
  changedAt: string;
  requestId: string | null;
  rollbackOf: number | null;
}
export interface Actor {
  changedBy: string;
  requestId: string;
}

/**
 * Cache keys carry the namespace's generation (INCR after every committed write). A reader that
 * loaded a snapshot from PostgreSQL just before a write committed stores it under the old
 * generation, which nobody reads any more: no stale snapshot can outlive a write (the classic
 * cache-aside race), and old generations simply expire.
 */
export const generationKey = (ns: string) => `config:v1:gen:${ns}`;
export const cacheKey = (ns: string, generation: string) => `config:v1:ns:${ns}:${generation}`;

export class ConfigStore {
  constructor(
    private readonly pg: Pick<PostgresClient, "pool" | "transaction">,
    private readonly redis: Redis,
    private readonly opts: { cacheTtlSeconds: number; maxValueBytes: number; onCacheError?: (e: Error) => void },
  ) {}

  private get pool() {
    return this.pg.pool;
  }

  /** Namespace snapshot; `cache` tells whether it came from Dragonfly. Cache failures fall back to PostgreSQL. */
  async snapshot(ns: string): Promise<{ snapshot: Snapshot; cache: "hit" | "miss" | "error" }> {
    let key: string;
    try {
      const generation = (await this.redis.get(generationKey(ns))) ?? "0";
      key = cacheKey(ns, generation);
      const cached = await this.redis.get(key);
      if (cached) return { snapshot: JSON.parse(cached) as Snapshot, cache: "hit" };
    } catch (e) {
      this.opts.onCacheError?.(e as Error);
      return { snapshot: await this.load(ns), cache: "error" };
    }
    const snapshot = await this.load(ns);
    await this.redis.set(key, JSON.stringify(snapshot), "EX", this.opts.cacheTtlSeconds).catch((e) => this.opts.onCacheError?.(e));
    return { snapshot, cache: "miss" };
  }

  private async load(ns: string): Promise<Snapshot> {
    const { rows } = await this.pool.query<{ key: string; value: unknown; version: number; updated_at: Date; updated_by: string }>(
      "SELECT key, value, version, updated_at, updated_by FROM config_entries WHERE namespace = $1 ORDER BY key",
      [ns],
    );
    // fromEntries defines own properties: a key "__proto__" stays a key instead of setting the prototype.
    const entries: Record<string, Entry> = Object.fromEntries(
      rows.map((r) => [r.key, { value: r.value, version: r.version, updatedAt: r.updated_at.toISOString(), updatedBy: r.updated_by }]),
    );
    return { namespace: ns, entries };
  }

  /** The value as JSON text, or a 400 naming the key (missing, too large, or text PostgreSQL cannot store). */
  checkValue(value: unknown, key = "value"): string {
    if (value === undefined) throw badRequest("value is required", "value");
    const bad = findUnstorableText(value);
    if (bad) throw badRequest(`value of ${key}${bad.length ? ` at ${bad.join(".")}` : ""} contains a NUL character or an unpaired surrogate`, ["value", ...bad].join("."));
    const json = JSON.stringify(value);
    const size = Buffer.byteLength(json);
    if (size > this.opts.maxValueBytes) throw badRequest(`value is ${size} bytes of JSON, the limit is ${this.opts.maxValueBytes}`, "value");
    return json;
  }

  /** Creates or updates a key (a new version). expectedVersion: 0 = must not exist; omitted = last write wins. */
  async set(ns: string, key: string, value: unknown, expectedVersion: number | undefined, actor: Actor, rollbackOf?: number) {
    const json = this.checkValue(value, `${ns}/${key}`);
    return this.change(ns, key, expectedVersion, actor, async (client, current, next) => {
      await client.query(
        `INSERT INTO config_entries (namespace, key, value, version, updated_at, updated_by)
         VALUES ($1, $2, $3::jsonb, $4, now(), $5)
         ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version,
           updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
        [ns, key, json, next, actor.changedBy],
      );
      return { operation: rollbackOf ? ("rollback" as const) : ("set" as const), oldValue: current?.value ?? null, newJson: json, rollbackOf };
    });
  }

  async delete(ns: string, key: string, expectedVersion: number | undefined, actor: Actor) {
    return this.change(ns, key, expectedVersion, actor, async (client, current) => {
      if (!current) throw notFound(`${ns}/${key} does not exist`);
      await client.query("DELETE FROM config_entries WHERE namespace = $1 AND key = $2", [ns, key]);
      return { operation: "delete" as const, oldValue: current.value, newJson: null };
    });
  }

  async rollback(ns: string, key: string, toVersion: number, expectedVersion: number | undefined, actor: Actor) {
    const { rows } = await this.pool.query<{ new_value: unknown; operation: string }>(
      "SELECT new_value, operation FROM config_versions WHERE namespace = $1 AND key = $2 AND version = $3",
      [ns, key, toVersion],
    );
    if (!rows[0]) throw notFound(`${ns}/${key} has no version ${toVersion}`);
    if (rows[0].operation === "delete") throw badRequest(`version ${toVersion} of ${ns}/${key} is a delete; use DELETE instead`, "version");
    return this.set(ns, key, rows[0].new_value, expectedVersion, actor, toVersion);
  }

  private async change(
    ns: string,
    key: string,
    expectedVersion: number | undefined,
    actor: Actor,
    apply: (
      client: PoolClient,
      current: { value: unknown; version: number } | undefined,
      next: number,
    ) => Promise<{ operation: ConfigChange["operation"]; oldValue: unknown; newJson: string | null; rollbackOf?: number }>,
  ) {
    // Without expectedVersion (last write wins) a lost race on a new version number is retried.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.changeOnce(ns, key, expectedVersion, actor, apply);
      } catch (e) {
        if (expectedVersion !== undefined || attempt >= 5 || !(e instanceof HttpError && e.statusCode === 409)) throw e;
      }
    }
  }

  private async changeOnce(
    ns: string,
    key: string,
    expectedVersion: number | undefined,
    actor: Actor,
    apply: Parameters<ConfigStore["change"]>[4],
  ): Promise<ConfigChange & { created: boolean }> {
    let change: ConfigChange & { created: boolean };
    try {
      // Changes of one key take turns, its creation included: FOR UPDATE below locks no row while the
      // key does not exist, and a creator that found none then read the history after another
      // creator's commit, wrote over its value as the next version and answered 201 to expectedVersion 0.
      // (The kit's `lock`: one key's changes at once wait in this process, on no connection.)
      change = await this.pg.transaction(
        async (client) => {
          const cur = await client.query<{ value: unknown; version: number }>(
            "SELECT value, version FROM config_entries WHERE namespace = $1 AND key = $2 FOR UPDATE",
            [ns, key],
          );
          const current = cur.rows[0];
          const currentVersion = current?.version ?? 0;
          if (expectedVersion !== undefined && expectedVersion !== currentVersion) {
            throw conflict(`${ns}/${key} is at version ${currentVersion}, not ${expectedVersion}`, "expectedVersion");
          }
          // Versions keep counting across deletes: the next one follows the history, not the live row.
          const last = await client.query<{ v: number }>(
            "SELECT coalesce(max(version), 0) AS v FROM config_versions WHERE namespace = $1 AND key = $2",
            [ns, key],
          );
          const next = Number(last.rows[0].v) + 1;
          const r = await apply(client, current, next);
          const ins = await client.query<{ changed_at: Date }>(
            `INSERT INTO config_versions (namespace, key, version, operation, old_value, new_value, changed_by, request_id, rollback_of)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9) RETURNING changed_at`,
            [ns, key, next, r.operation, current ? JSON.stringify(current.value) : null, r.newJson, actor.changedBy, actor.requestId, r.rollbackOf ?? null],
          );
          return {
            namespace: ns,
            key,
            version: next,
            operation: r.operation,
            changedBy: actor.changedBy,
            changedAt: ins.rows[0].changed_at.toISOString(),
            requestId: actor.requestId,
            created: !current && r.operation !== "delete",
          };
        },
        { lock: { space: KEY_LOCK_SPACE, key: `${ns}/${key}` } },
      );
    } catch (e) {
      // Two writers creating the same version concurrently: the loser gets a conflict.
      if ((e as { code?: string }).code === "23505") throw conflict(`${ns}/${key} was changed concurrently; retry with the new version`, "expectedVersion");
      throw e;
    }
    // After commit: invalidate, then notify (subscribers re-reading get the new value).
    await this.invalidate(ns);
    const { created: _created, ...message } = change;
    await this.redis.publish(changeChannel(ns), JSON.stringify(message)).catch((e) => this.opts.onCacheError?.(e));
    return change;
  }

  /** New generation (readers move to a fresh key) and drop the old snapshot right away. */
  private async invalidate(ns: string): Promise<void> {
    try {
      const next = await this.redis.incr(generationKey(ns));
      await this.redis.del(cacheKey(ns, String(next - 1)));
    } catch (e) {
      this.opts.onCacheError?.(e as Error);
    }
  }

  async history(ns: string, key: string, limit: number): Promise<VersionRow[]> {
    const { rows } = await this.pool.query(
      `SELECT version, operation, old_value, new_value, changed_by, changed_at, request_id, rollback_of
         FROM config_versions WHERE namespace = $1 AND key = $2 ORDER BY version DESC LIMIT $3`,
      [ns, key, limit],
    );
    return rows.map(toVersionRow);
  }

  async audit(ns: string, limit: number): Promise<Array<VersionRow & { key: string }>> {
    const { rows } = await this.pool.query(
      `SELECT key, version, operation, old_value, new_value, changed_by, changed_at, request_id, rollback_of
         FROM config_versions WHERE namespace = $1 ORDER BY id DESC LIMIT $2`,
      [ns, limit],
    );
    return rows.map((r) => ({ key: r.key as string, ...toVersionRow(r) }));
  }
}

function toVersionRow(r: Record<string, unknown>): VersionRow {
  return {
    version: r.version as number,
    operation: r.operation as VersionRow["operation"],
    oldValue: r.old_value,
    newValue: r.new_value,
    changedBy: r.changed_by as string,
    changedAt: (r.changed_at as Date).toISOString(),
    requestId: (r.request_id as string | null) ?? null,
    rollbackOf: (r.rollback_of as number | null) ?? null,
  };
}
