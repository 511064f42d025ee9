/**
 * Migration 0406 against the harness's PostgreSQL, through the project's migration runner, on a
 * database holding payment intents written before it: billing's invoice charges become `internal`,
 * everything else (a user's 1-cent payment under billing's next key, the squat) stays `client`, and
 * billing's next charge under that key is accepted beside the squat. A new row must name its origin.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { loadMigrationFiles, POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";

const srv = useServers("postgres");
const all = loadMigrationFiles(POSTGRES_MIGRATIONS_DIR);
let pool: import("pg").Pool;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: srv.postgres.adminUrl });
  await admin.connect();
  const name = `origin_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(srv.postgres.adminUrl);
  u.pathname = `/${name}`;
  pool = new pg.Pool({ connectionString: u.toString(), max: 2 });
  await runPostgresMigrations(pool, { files: all.filter((f) => f.version < 406) });
}, 120_000);

afterAll(async () => {
  await pool?.end();
});

const intent = (userId: string, key: string, reference: string | null, origin?: string) =>
  pool.query(
    `INSERT INTO pay_intents (intent_id, user_id, idempotency_key, request_hash, amount, currency, payment_method, reference, status, processor${origin ? ", origin" : ""})
     VALUES ($1, $2, $3, 'h', 1000, 'usd', 'pm_card_visa', $4, 'failed', 'stripe'${origin ? ", $5" : ""})`,
    [randomUUID(), userId, key, reference, ...(origin ? [origin] : [])],
  );

describe("migration 0406: idempotency keys per origin", () => {
  it("sorts the rows written before, then lets billing use the key a user took", async () => {
    const user = randomUUID();
    const invoice = randomUUID();
    await intent(user, `invoice-${invoice}-1`, `invoice:${invoice}`); // billing's first attempt
    await intent(user, `invoice-${invoice}-2`, null); // the user's squat on the second
    await intent(user, "k-1", "order:1");
    const result = await runPostgresMigrations(pool);
    expect(result.applied[0]).toBe("0406_pay_intents_key_origin.sql");
    const rows = (await pool.query("SELECT idempotency_key, origin FROM pay_intents WHERE user_id = $1 ORDER BY idempotency_key", [user])).rows;
    expect(rows).toEqual([
      { idempotency_key: `invoice-${invoice}-1`, origin: "internal" },
      { idempotency_key: `invoice-${invoice}-2`, origin: "client" },
      { idempotency_key: "k-1", origin: "client" },
    ]);
    await intent(user, `invoice-${invoice}-2`, `invoice:${invoice}`, "internal");
    await expect(intent(user, `invoice-${invoice}-2`, null, "client")).rejects.toThrow(/pay_intents_idempotency/);
    await expect(intent(user, "k-2", null)).rejects.toThrow(/origin/);
  });
});
