/**
 * Model registry in PostgreSQL (migrations/postgres/0300_ml_registry.sql): register a trained
 * model (artifact + report), list, fetch, promote one to be served, roll back to the model that was
 * promoted before. Every switch (promotion or rollback) is one transaction that takes the
 * registry's advisory lock before reading anything, so switches take turns: each reads the model
 * served and the promotion history as the previous switch committed them. Row locks alone did not
 * do: a switch that waited for the served model's row found it retired and no longer saw any
 * promoted model (the one promoted meanwhile was not in its snapshot), and failed on the unique
 * partial index that allows one promoted model; a rollback that read the history before a
 * promotion committed undid the wrong one.
 */
import type { PoolClient, QueryResultRow } from "pg";
import type { AdvisoryLock } from "../kit/datastores/postgres";
import { sha256 } from "./model";
import type { TrainingReport } from "./training";

export interface RegistryDb {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
  /** `lock`: the kit's advisory lock, taken first in this process's turn of it (PostgresClient.transaction). */
  transaction<T>(fn: (client: PoolClient) => Promise<T>, opts?: { lock?: AdvisoryLock }): Promise<T>;
}

export type ModelStatus = "candidate" | "promoted" | "retired";

export interface ModelRecord {
  version: string;
  status: ModelStatus;
  createdAt: string;
  trainedAt: string;
  promotedAt: string | null;
  horizonBars: number;
  intervalMs: number;
  symbols: string[];
  trainingWindow: { from: string; to: string };
  features: string[];
  params: Record<string, unknown>;
  metrics: TrainingReport["metrics"];
  hasEdge: boolean;
  reference: TrainingReport["reference"];
  artifactSha256: string;
  artifactBytes: number;
}

export interface ModelWithArtifact extends ModelRecord {
  artifact: Buffer;
}

export class RegistryError extends Error {
  constructor(
    readonly code: "MODEL_NOT_FOUND" | "NO_PREVIOUS_MODEL" | "NO_PROMOTED_MODEL" | "PROMOTED_MODEL_CHANGED",
    message: string,
    /** The request field the error is about, when one is. */
    readonly field?: string,
  ) {
    super(message);
  }
}

const COLUMNS = `version, status, created_at, trained_at, promoted_at, horizon_bars, interval_ms, symbols,
  training_from, training_to, features, params, metrics, has_edge, reference, artifact_sha256, artifact_bytes`;

interface Row {
  version: string;
  status: ModelStatus;
  created_at: Date;
  trained_at: Date;
  promoted_at: Date | null;
  horizon_bars: number;
  interval_ms: string;
  symbols: string[];
  training_from: Date;
  training_to: Date;
  features: string[];
  params: Record<string, unknown>;
  metrics: TrainingReport["metrics"];
  has_edge: boolean;
  reference: TrainingReport["reference"];
  artifact_sha256: string;
  artifact_bytes: number;
  artifact?: Buffer;
}

function toRecord(r: Row): ModelRecord {
  return {
    version: r.version,
    status: r.status,
    createdAt: r.created_at.toISOString(),
    trainedAt: r.trained_at.toISOString(),
    promotedAt: r.promoted_at?.toISOString() ?? null,
    horizonBars: r.horizon_bars,
    intervalMs: Number(r.interval_ms),
    symbols: r.symbols,
    trainingWindow: { from: r.training_from.toISOString(), to: r.training_to.toISOString() },
    features: r.features,
    params: r.params,
    metrics: r.metrics,
    hasEdge: r.has_edge,
    reference: r.reference,
    artifactSha256: r.artifact_sha256,
    artifactBytes: r.artifact_bytes,
  };
}

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

export class ModelRegistry {
  constructor(private readonly db: RegistryDb) {}

  async register(onnx: Uint8Array, report: TrainingReport, actor: string, trainedAt = new Date()): Promise<ModelRecord> {
    const checksum = sha256(onnx);
    const version = `lgbm-${stamp(trainedAt)}-${checksum.slice(0, 8)}`;
    return this.db.transaction(async (c) => {
      const { rows } = await c.query<Row>(
        `INSERT INTO ml_models (version, status, trained_at, horizon_bars, interval_ms, symbols, training_from, training_to,
           features, params, metrics, has_edge, reference, artifact, artifact_sha256, artifact_bytes)
         VALUES ($1, 'candidate', $2, $3, $4, $5, to_timestamp($6 / 1000.0), to_timestamp($7 / 1000.0), $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING ${COLUMNS}`,
        [
          version, trainedAt, report.horizon, Math.round(report.intervalMs), report.symbols, report.trainingWindow.from,
          report.trainingWindow.to, report.features, report.params, report.metrics, report.metrics.hasEdge, report.reference,
          Buffer.from(onnx), checksum, onnx.byteLength,
        ],
      );
      await c.query(`INSERT INTO ml_model_events (version, action, actor) VALUES ($1, 'registered', $2)`, [version, actor]);
      return toRecord(rows[0]);
    });
  }

  async list(limit = 50): Promise<ModelRecord[]> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM ml_models ORDER BY created_at DESC, version DESC LIMIT $1`, [limit]);
    return rows.map(toRecord);
  }

  async get(version: string): Promise<ModelRecord> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM ml_models WHERE version = $1`, [version]);
    if (!rows[0]) throw new RegistryError("MODEL_NOT_FOUND", `no model version ${version}`);
    return toRecord(rows[0]);
  }

  /** Version of the promoted model (a cheap poll for replicas that serve it). */
  async promotedVersion(): Promise<string | undefined> {
    const { rows } = await this.db.query<{ version: string }>(`SELECT version FROM ml_models WHERE status = 'promoted'`);
    return rows[0]?.version;
  }

  /** A model with its artifact (to check that it loads before it is promoted). */
  async withArtifact(version: string): Promise<ModelWithArtifact> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS}, artifact FROM ml_models WHERE version = $1`, [version]);
    if (!rows[0]) throw new RegistryError("MODEL_NOT_FOUND", `no model version ${version}`);
    return { ...toRecord(rows[0]), artifact: rows[0].artifact! };
  }

  /** The promoted model with its artifact, or undefined when none is promoted. */
  async promoted(): Promise<ModelWithArtifact | undefined> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS}, artifact FROM ml_models WHERE status = 'promoted'`);
    return rows[0] ? { ...toRecord(rows[0]), artifact: rows[0].artifact! } : undefined;
  }

  async events(limit = 50) {
    const { rows } = await this.db.query(`SELECT id, version, action, previous, actor, reason, at FROM ml_model_events ORDER BY at DESC, id DESC LIMIT $1`, [limit]);
    return rows;
  }

  /** Serve `version` from now on; the previously promoted model is retired. Idempotent. */
  async promote(version: string, actor: string, reason?: string): Promise<ModelRecord> {
    return this.switchTo(version, actor, "promoted", reason);
  }

  /**
   * Promote again the model that was promoted before the current one. Promotions form a stack
   * (promote pushes, rollback pops): rolling back twice goes two promotions back, not back and forth.
   * The caller names the model it rolls back from (`fromVersion`): a rollback whose model was
   * already left (by a repeat of the same rollback, or another admin's switch) is refused, so 20
   * impatient repeats go one step back, not 20.
   */
  async rollback(actor: string, fromVersion: string, reason?: string): Promise<ModelRecord> {
    return this.db.transaction(async (c) => {
      const { rows } = await c.query<{ version: string; action: string }>(
        `SELECT version, action FROM ml_model_events WHERE action IN ('promoted', 'rolled_back') ORDER BY id`,
      );
      const stack: string[] = [];
      for (const e of rows) {
        if (e.action === "promoted") stack.push(e.version);
        else stack.pop();
      }
      if (stack.length === 0) throw new RegistryError("NO_PROMOTED_MODEL", "no model is promoted: nothing to roll back");
      if (stack[stack.length - 1] !== fromVersion)
        throw new RegistryError(
          "PROMOTED_MODEL_CHANGED",
          `the promoted model is ${stack[stack.length - 1]}, not ${fromVersion}: not rolled back (read GET /status and roll back from the model served, if still wanted)`,
          "fromVersion",
        );
      if (stack.length === 1) throw new RegistryError("NO_PREVIOUS_MODEL", `model ${stack[0]} was the first promoted: no previous model to roll back to`);
      return this.switchIn(c, stack[stack.length - 2], actor, "rolled_back", reason);
    }, SWITCHES_ONE_AT_A_TIME);
  }

  private async switchTo(version: string, actor: string, action: "promoted" | "rolled_back", reason?: string): Promise<ModelRecord> {
    return this.db.transaction(async (c) => this.switchIn(c, version, actor, action, reason), SWITCHES_ONE_AT_A_TIME);
  }

  /** The switch itself, in a transaction holding MODEL_SWITCH_LOCK (each statement then sees the previous switch committed). */
  private async switchIn(c: PoolClient, version: string, actor: string, action: "promoted" | "rolled_back", reason?: string): Promise<ModelRecord> {
    const locked = await c.query<Row>(`SELECT ${COLUMNS} FROM ml_models WHERE version = $1 OR status = 'promoted' ORDER BY version FOR UPDATE`, [version]);
    const target = locked.rows.find((r) => r.version === version);
    if (!target) throw new RegistryError("MODEL_NOT_FOUND", `no model version ${version}`);
    const current = locked.rows.find((r) => r.status === "promoted");
    if (current?.version === version) return toRecord(current);
    if (current) await c.query(`UPDATE ml_models SET status = 'retired' WHERE version = $1`, [current.version]);
    const { rows } = await c.query<Row>(
      `UPDATE ml_models SET status = 'promoted', promoted_at = now() WHERE version = $1 RETURNING ${COLUMNS}`,
      [version],
    );
    // clock_timestamp(), not the transaction's start (now()): a switch that waited for the lock
    // happened after the one it waited for, and the history lists events by time.
    await c.query(`INSERT INTO ml_model_events (version, action, previous, actor, reason, at) VALUES ($1, $2, $3, $4, $5, clock_timestamp())`, [
      version, action, current?.version ?? null, actor, reason ?? null,
    ]);
    return toRecord(rows[0]);
  }
}

/** Advisory lock key ("mlsw") of model switches: one at a time across every replica. */
export const MODEL_SWITCH_LOCK = 0x6d6c7377;
/** A switch's transaction takes the lock first (the kit's `lock`: switches at once wait in this process on no connection). */
const SWITCHES_ONE_AT_A_TIME = { lock: MODEL_SWITCH_LOCK };
