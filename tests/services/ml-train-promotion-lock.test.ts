/**
 * Session 59: ml-predictor's `train` command end to end (real Python training on planted ClickHouse
 * bars) while another session holds the model switch lock (ml/registry.ts MODEL_SWITCH_LOCK), the
 * kit's lock bound POSTGRES_LOCK_WAIT_MS at 500 ms. Before, the run failed at the first bound, the
 * model left a candidate. Now (services/ml-predictor/promotion.ts) the promotion tries again within
 * ML_PROMOTE_WAIT_MS: let go within it, the run succeeds with the model promoted; held past it, the run
 * fails with PromotionLockError (recorded as the scheduled job's failure), nothing half promoted.
 * tests/services/ml-promotion-lock.test.ts has the promotion alone, without training.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { useServers } from "../harness/shared";
import { AdvisoryLockHolder } from "../helpers/advisory-lock-holder";
import { runCommand } from "../../services/src/kit";
import databaseService from "../../services/src/services/database-service";
import mlPredictor from "../../services/src/services/ml-predictor";
import { MODEL_SWITCH_LOCK } from "../../services/src/ml/registry";
import { PromotionLockError } from "../../services/src/services/ml-predictor/promotion";
import { plantedBars } from "../helpers/planted-bars";
import { insertPlantedBars } from "../helpers/planted-candles";
import { ML_DIR, mlPython } from "../helpers/ml-python";

const srv = useServers("postgres", "clickhouse");
const SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];
let env: Record<string, string>;
const holder = new AdvisoryLockHolder(() => srv.postgres.url);

const insertBars = (symbol: string, bars: ReturnType<typeof plantedBars>) => insertPlantedBars(srv.clickhouse, symbol, bars);

/** Another session (an admin's switch, a stalled one) holding the model switch lock until `letGo`. */
const holdSwitchLock = () => holder.hold(MODEL_SWITCH_LOCK);

async function query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: srv.postgres.url });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}
const models = () => query<{ version: string; status: string }>(`SELECT version, status FROM ml_models ORDER BY created_at`);
const promotions = () => query<{ version: string }>(`SELECT version FROM ml_model_events WHERE action = 'promoted' ORDER BY id`);

/** The train command with its log lines (LOG_LEVEL info) read as they come. */
function train(extra: Record<string, string>) {
  const lines: Array<{ level: number; msg: string; attempt?: number; lock?: string }> = [];
  const run = runCommand(mlPredictor, "train", [], { env: { ...env, ...extra }, defaultMetrics: false, logStream: { write: (s: string) => void lines.push(JSON.parse(s)) } });
  return { run, lines, waits: () => lines.filter((l) => l.msg.startsWith("promotion waited for the model switch lock")) };
}

beforeAll(async () => {
  env = {
    ...srv.env,
    LOG_LEVEL: "info",
    ML_PYTHON: await mlPython(),
    ML_TRAINING_DIR: ML_DIR,
    ML_TRAIN_SYMBOLS: SYMBOLS.join(","),
    ML_TRAIN_BARS: "6000",
    POSTGRES_LOCK_WAIT_MS: "500",
  };
  expect(await runCommand(databaseService, "migrate", [], { env: { ...env, LOG_LEVEL: "silent" }, defaultMetrics: false })).toBe(0);
  for (const s of SYMBOLS) await insertBars(s, plantedBars({ symbol: s, bars: 6000, seed: `promo-${s}`, plantedSignal: 0.5 }));
}, 600_000);
afterEach(() => holder.releaseAll()); // a failed test's lock goes with its session

describe("the train command while the model switch lock is held", () => {
  it("held past ML_PROMOTE_WAIT_MS: the run fails with PromotionLockError, recorded; the model stays a candidate", async () => {
    const lock = await holdSwitchLock();
    const job = train({ ML_PROMOTE_WAIT_MS: "2000" });
    const failure = await job.run.then(() => undefined, (e: unknown) => e);
    await lock.letGo();
    expect(failure).toBeInstanceOf(PromotionLockError);
    const [model] = await models();
    expect((failure as Error).message).toMatch(new RegExp(`^model ${model.version} was registered but not promoted: the model switch lock stayed held .*ML_PROMOTE_WAIT_MS 2000\\); the model served is unchanged\\. Promote it with POST /models/${model.version}/promote`));
    expect(job.waits().length).toBeGreaterThanOrEqual(1);
    expect(job.lines.filter((l) => l.level === 50).map((l) => l.msg)).toContain("promotion failed: the model switch lock stayed held through the promotion's budget; the model stays a candidate");
    // Nothing half promoted: registered, not promoted, no promotion recorded.
    expect(await models()).toEqual([{ version: model.version, status: "candidate" }]);
    expect(await promotions()).toEqual([]);
    expect(await query(`SELECT last_failure_code FROM scheduled_job_runs WHERE job = 'ml-predictor-retrain'`)).toEqual([{ last_failure_code: "PromotionLockError" }]);
  }, 600_000);

  it("let go within ML_PROMOTE_WAIT_MS: the run waits, logging it, and succeeds with the new model promoted", async () => {
    const before = (await models()).map((m) => m.version);
    const lock = await holdSwitchLock();
    const job = train({ ML_PROMOTE_WAIT_MS: "120000" });
    // The training ends and the promotion waits (logged) before the holder lets go.
    await expect.poll(() => job.waits().length, { timeout: 540_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    await lock.letGo();
    expect(await job.run).toBe(0);
    const after = await models();
    const trained = after.find((m) => !before.includes(m.version))!;
    expect(trained.status).toBe("promoted");
    expect(await promotions()).toEqual([{ version: trained.version }]);
    expect(job.waits().map((l) => [l.level, l.lock])).toEqual(job.waits().map(() => [40, "the model switch lock"]));
    expect(job.lines.filter((l) => l.level >= 50)).toEqual([]);
  }, 600_000);
});
