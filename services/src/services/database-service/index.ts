/**
 * database-service: owns the schema of every datastore and reports their health and latency.
 *   `node dist/main.js database-service migrate`  one-shot (the catalog preDeployJob): exit 0/1
 * Layers: routes.ts (HTTP), domain.ts (report and migration status rules; no I/O), data.ts (probes
 * and tracking tables); the migrations themselves are src/migrations/. The Kafka consumers' dead
 * letters (listed, replayed): dead-letter-routes.ts (HTTP), dead-letter-replay.ts (claim, send,
 * mark; no I/O), dead-letters.ts (PostgreSQL's table) and clickhouse-dead-letters.ts (ClickHouse's,
 * and their replay ledger in PostgreSQL); their retention: dead-letters.ts deleteReplayedLetters and
 * clickhouse-dead-letter-retention.ts.
 */
import { Gauge } from "prom-client";
import { type Datastore, setting } from "../../catalog";
import { defineService, PeriodicDelete, Type } from "../../kit";
import { migrateAll } from "../../migrations";
import { probeDatastores } from "./data";
import { datastoreReport, probeGaugeValue } from "./domain";
import { registerDeadLetterRoutes } from "./dead-letter-routes";
import { deleteReplayedLetters } from "./dead-letters";
import { ClickHouseLetterRetention, stuckMutationsGauge } from "./clickhouse-dead-letter-retention";
import { registerRoutes } from "./routes";

export type { DatastoreHealth } from "./domain";

export default defineService({
  name: "database-service",
  config: {
    /** Bound on each datastore probe of GET /datastores. */
    DATASTORE_CHECK_TIMEOUT_MS: Type.Integer(setting("database-service", "DATASTORE_CHECK_TIMEOUT_MS")),
    /** Bound on waiting for another migrate run's advisory lock. */
    MIGRATE_LOCK_TIMEOUT_MS: Type.Integer({ default: 300_000, minimum: 100, maximum: 3_600_000 }),
    /**
     * Deadline of a dead letter's replay send (its producer's own, kit deadlineProducer): then the
     * producer is cut and the admin answered 503. A cut send may still land, and kafkajs' retries
     * of a send it cut end within a few deadlines: its claim is kept for DEAD_LETTER_REPLAY_CLAIM_MS.
     */
    DEAD_LETTER_REPLAY_SEND_MS: Type.Integer({
      default: 10_000,
      minimum: 500,
      maximum: 120_000,
      atMost: { key: "DEAD_LETTER_REPLAY_CLAIM_MS", divisor: 8, why: "a replay's claim must outlive its send and the retries of a send cut at the deadline, or a second replay sends the letter while the first one's copy may still land" },
    }),
    /** Age at which a replay's claim on a dead letter is taken over by the next replay (the one holding it crashed between its send and its mark). */
    DEAD_LETTER_REPLAY_CLAIM_MS: Type.Integer({ default: 120_000, minimum: 4_000, maximum: 3_600_000 }),
    /**
     * PostgreSQL's dead letters replayed longer ago than this are deleted (5,000 a pass); those not
     * replayed are kept however old. A replayed letter's message is on its topic again (at
     * `replayed_offset`), so the row is only the record of the replay, kept a quarter by default for an
     * operator looking back.
     */
    DEAD_LETTER_REPLAYED_RETENTION_DAYS: Type.Integer({ default: 90, minimum: 1, maximum: 36_500, description: "days a replayed dead letter (PostgreSQL's) is kept after its replay" }),
    /**
     * ClickHouse's dead letters (the consumers without PostgreSQL) set aside longer ago than this are
     * deleted, replayed or not (clickhouse-dead-letter-retention.ts: ClickHouse cannot tell which were
     * replayed, PostgreSQL's ledger does). At least 30 days: MessagesSetAside alerts within 15 minutes,
     * so a letter not replayed has waited a month for an operator; a quarter by default, as PostgreSQL
     * keeps a replayed letter.
     */
    DEAD_LETTER_CH_RETENTION_DAYS: Type.Integer({
      default: 90,
      minimum: 30,
      maximum: 36_500,
      description: "days a ClickHouse dead letter is kept after it was set aside",
      atMost: { key: "DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS", why: "a letter's replay ledger row must outlive the letter, or a replayed letter still in ClickHouse reads as not replayed and a second replay sends its message again" },
    }),
    /**
     * The replay ledger's rows (PostgreSQL, of ClickHouse's letters) replayed or claimed longer ago
     * than this are deleted, once ClickHouse no longer holds their letters. Twice the letters' by
     * default: the record of a replay outlives its letter by a quarter, for an operator looking back.
     */
    DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS: Type.Integer({ default: 180, minimum: 30, maximum: 36_500, description: "days a ClickHouse dead letter's replay record is kept after its replay" }),
  },
  async register({ app, config, definition, metrics, log, onClose }) {
    const latency = new Gauge({
      name: "datastore_probe_latency_ms",
      help: "Latency of the last datastore probe (ms); -1 when failing",
      labelNames: ["datastore"],
      registers: [metrics.registry],
    });
    const listed = { required: definition.requires, optional: definition.optional };
    const report = async (only?: Datastore) => {
      const datastores = await probeDatastores(app.datastores, listed, config.DATASTORE_CHECK_TIMEOUT_MS, only);
      for (const [d, h] of Object.entries(datastores)) {
        const value = probeGaugeValue(h);
        if (value !== undefined) latency.set({ datastore: d }, value);
      }
      return datastoreReport(datastores);
    };
    registerRoutes(app, { known: [...definition.requires, ...definition.optional], report });
    registerDeadLetterRoutes(app, { sendDeadlineMs: config.DEAD_LETTER_REPLAY_SEND_MS, claimStaleMs: config.DEAD_LETTER_REPLAY_CLAIM_MS });
    const replayed = new PeriodicDelete("replayed dead letters past their retention", () => deleteReplayedLetters(app.pg, config.DEAD_LETTER_REPLAYED_RETENTION_DAYS, 5_000), log);
    replayed.start();
    onClose(() => replayed.stop());
    if (app.datastores.isEnabled("clickhouse")) {
      const days = { letters: config.DEAD_LETTER_CH_RETENTION_DAYS, replays: config.DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS };
      const chRetention = new ClickHouseLetterRetention(app.clickhouse, app.pg, days, 5_000, { log, stuck: stuckMutationsGauge(metrics.registry) });
      // A quarter of an hour: the retentions count days, and a pass reads the letters' created_at.
      const chLetters = new PeriodicDelete("ClickHouse's dead letters and their replay ledger past their retention", chRetention.periodicPass, log, { intervalMs: 900_000 });
      chLetters.start();
      onClose(() => chLetters.stop());
    }
  },
  commands: {
    async migrate(ctx) {
      try {
        const r = await migrateAll(ctx.datastores, ctx.log, { lockTimeoutMs: ctx.config.MIGRATE_LOCK_TIMEOUT_MS });
        ctx.log.info({ report: r }, "migrations complete");
        return 0;
      } catch (e) {
        ctx.log.error({ err: { message: (e as Error).message } }, "migrations failed");
        return 1;
      }
    },
  },
});
