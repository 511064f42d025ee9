/**
 * risk-analyzer's kill switch set to the state a scope already has (real PostgreSQL and Redis as
 * Dragonfly): a no-op answered with the scope as it is, its last change unchanged, and no
 * "from X to X" row in trading_state_changes, also when several admins set the same state at once
 * (compared under the scope's lock: exactly one of them records the change). The Dragonfly key is
 * written either way, so a copy that drifted agrees with the record again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "../harness";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import type { Identity } from "../../services/src/kit";
import { migratedKitPostgres } from "../helpers/schemas";
import { engineRecords } from "../helpers/engine-records";
import { KillSwitch, type Scope } from "../../services/src/services/risk-analyzer/kill-switch";
import { TRADING_STATE_KEYS, type TradingState } from "../../services/src/trading/tradingState";

const srv = useServers("postgres", "redis");
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof createPostgres>[1];
const admins: Identity[] = Array.from({ length: 6 }, () => ({ userId: randomUUID(), role: "admin", authMethod: "jwt" }));
let client: PostgresClient;
let redis: InstanceType<typeof Redis>;
let killSwitch: KillSwitch;
const { newUser } = engineRecords(() => client);

const rowsOf = async (userId: string) =>
  (await client.query<{ from_state: string; to_state: string; changed_by: string }>("SELECT from_state, to_state, changed_by FROM trading_state_changes WHERE scope = $1 ORDER BY id", [`user:${userId}`])).rows;
const set = (scope: Scope, to: TradingState, by = admins[0]) => killSwitch.change(scope, to, "review of the same state", by);

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 8);
  redis = new Redis(srv.env.DRAGONFLY_URL);
  killSwitch = new KillSwitch(client, () => redis, log as unknown as ConstructorParameters<typeof KillSwitch>[2]);
}, 300_000);

afterAll(async () => {
  redis?.disconnect();
  await client?.close();
});

describe("kill switch: setting the state a scope already has", () => {
  it("is a no-op: the same answer, no audit row; active on a scope never set records nothing either", async () => {
    const userId = await newUser();
    const scope: Scope = { kind: "user", userId };
    expect(await set(scope, "active")).toMatchObject({ state: "active", enforced: "active", lastChange: null });
    expect(await rowsOf(userId)).toEqual([]);

    const halted = await set(scope, "halted");
    const again = await set(scope, "halted", admins[1]);
    expect(again).toMatchObject({ scope: `user:${userId}`, userId, state: "halted", enforced: "halted" });
    expect(again.lastChange?.id).toBe(halted.lastChange?.id); // the change that halted it, by the first admin
    expect(await rowsOf(userId)).toEqual([{ from_state: "active", to_state: "halted", changed_by: admins[0].userId }]);
  });

  it("several admins setting one state at once record one change", async () => {
    const userId = await newUser();
    const scope: Scope = { kind: "user", userId };
    const answers = await Promise.all(admins.map((by) => set(scope, "reduce_only", by)));
    expect(answers.every((a) => a.state === "reduce_only" && a.enforced === "reduce_only")).toBe(true);
    const rows = await rowsOf(userId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ from_state: "active", to_state: "reduce_only" });
    expect(new Set(answers.map((a) => a.lastChange?.id))).toEqual(new Set([answers.find((a) => a.lastChange)!.lastChange!.id]));
  });

  it("re-applies the Dragonfly copy that drifted, still without a row", async () => {
    const userId = await newUser();
    const scope: Scope = { kind: "user", userId };
    await set(scope, "halted");
    await redis.del(TRADING_STATE_KEYS.user(userId));
    await set(scope, "halted", admins[2]);
    expect(await redis.get(TRADING_STATE_KEYS.user(userId))).toBe("halted");
    expect(await rowsOf(userId)).toHaveLength(1);
  });
});
