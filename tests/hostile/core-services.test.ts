/**
 * Hostile input on the core services beyond what the generated cases (./cases.ts) send, found by
 * session 48's hunt with a trader's token, an admin's and API keys, through the gateway against real
 * PostgreSQL, Redis, Kafka and ClickHouse:
 * - display text (kit display-text.ts): a display name, an API key's name, a kill switch reason and
 *   a hub heartbeat's labels took C1 controls (U+009B, a terminal's CSI), line separators, direction
 *   overrides ("\u202Egnp.exe" shows as "exe.png") and names of invisible characters only (U+200B, a
 *   BOM, a space); now a 400 naming the field, and text in any script, emoji sequences joined by
 *   U+200D and direction marks inside text still pass; the same for a payment's description, a
 *   refund's reason and a billing plan's name (session 48's follow-up; they were taken);
 * - a hub heartbeat's metadata keys: the declared 64-character bound was never applied (a TypeBox
 *   Record's key schema only selects keys), a 1,000-character key was stored;
 * - a Telegram chat id of 20 digits (beyond any chat: at most 52 bits) or 0 was saved, and a webhook
 *   URL whose host no DNS name can be ("a..b", a 2,030-character label) was registered;
 * - races the suite did not run: a user's API keys and webhooks created past their caps at once, an
 *   admin's role change, disable, enable and delete of one account at once, twelve kill switch
 *   changes of one scope at once (the audit's chain of from/to must hold);
 * - held: an admin's read key reaches admin reads but no admin write, and loses the reads as soon
 *   as the admin is demoted. Every answer is judged by
 *   ./oracle.ts (no 5xx, no internal names).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { PUSHED_WITHIN_MS } from "../helpers/patience";
import { FINE_TEXT, HOSTILE_TEXT } from "./display-texts";
import { sendJudged } from "./oracle";

const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
const PASSWORD = "correct horse battery staple";
const ADMIN = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
let p: Platform;
type User = { id: string; email: string; token: string };
let alice: User;
let bob: User;
let admin: string;
const failures: string[] = [];

async function gw(method: string, path: string, o: { body?: unknown; token?: string } = {}) {
  return sendJudged(`${p.gatewayUrl}${path}`, method, { headers: o.token ? { authorization: `Bearer ${o.token}` } : {}, body: o.body, failures });
}
const login = async (email: string, password: string) => (await gw("POST", "/api/users/login", { body: { email, password } })).json.accessToken as string;
async function register(name: string, displayName?: string) {
  const email = `${name}-${randomBytes(3).toString("hex")}@example.com`;
  return { email, r: await gw("POST", "/api/users/register", { body: { email, password: PASSWORD, ...(displayName === undefined ? {} : { displayName }) } }) };
}
async function user(name: string): Promise<User> {
  const { email, r } = await register(name);
  expect(r.status, r.text).toBe(201);
  return { id: r.json.user.id, email, token: await login(email, PASSWORD) };
}
/** The 400 naming `field`. */
const refused = (r: { status: number; json: any; text: string }, field: string, label: string) => {
  expect([r.status, r.json?.error?.field], `${label}: ${r.text.slice(0, 200)}`).toEqual([400, field]);
};

beforeAll(async () => {
  p = await startPlatform(srv.env, { BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password }, {
    only: ["api-gateway", "user-management", "central-hub", "risk-analyzer", "notification-service", "payment-service", "billing-service"],
  });
  alice = await user("alice");
  bob = await user("bob");
  admin = await login(ADMIN.email, ADMIN.password);
}, 600_000);
afterAll(async () => {
  await p?.close();
}, 120_000);

describe("display text on the core services", () => {
  it("a display name, an API key's name and a kill switch reason refuse controls, separators, overrides and invisible-only text, and keep text in any script", async () => {
    const before = Number((await p.pool.query("SELECT count(*) AS n FROM trading_state_changes")).rows[0].n);
    for (const [label, text] of HOSTILE_TEXT) {
      refused((await register("dn", text)).r, "displayName", `displayName ${label}`);
      refused(await gw("POST", "/api/users/api-keys", { token: alice.token, body: { name: text } }), "name", `api key name ${label}`);
      refused(await gw("PUT", `/api/risk/trading-state/users/${bob.id}`, { token: admin, body: { state: "halted", reason: text } }), "reason", `reason ${label}`);
    }
    // The 400 says what is wrong in words, not the pattern.
    const said = (await register("dn", "\u202egnp.exe")).r.json.error.message;
    expect(said).toBe("Invalid body: displayName must be printable text on one line (no control, line separator or text direction override characters) with at least one visible character");
    expect(Number((await p.pool.query("SELECT count(*) AS n FROM trading_state_changes")).rows[0].n)).toBe(before);

    for (const [i, text] of FINE_TEXT.entries()) {
      const { r } = await register("dn", text);
      expect(r.status, r.text).toBe(201);
      expect(r.json.user.displayName).toBe(text);
      const key = await gw("POST", "/api/users/api-keys", { token: alice.token, body: { name: text } });
      expect(key.status, key.text).toBe(201);
      expect(key.json.name).toBe(text);
      await gw("DELETE", `/api/users/api-keys/${key.json.id}`, { token: alice.token });
      // Each a change (halted, active, ...: bob ends active), so each is recorded with its reason.
      const ks = await gw("PUT", `/api/risk/trading-state/users/${bob.id}`, { token: admin, body: { state: i % 2 ? "active" : "halted", reason: text } });
      expect(ks.status, ks.text).toBe(200);
      expect(ks.json.lastChange.reason).toBe(text);
    }
    expect(failures).toEqual([]);
  });

  it("a hub heartbeat's version, address and metadata, and a lock's owner, are printable; metadata keys are bounded as declared", async () => {
    const beat = (body: Record<string, unknown>) => gw("PUT", "/api/hub/instances/h5-svc/i1", { token: admin, body: { version: "1.0.0", address: "10.0.0.1:8080", health: "healthy", ...body } });
    for (const [label, text] of HOSTILE_TEXT.slice(0, 7)) {
      refused(await beat({ version: text }), "version", `version ${label}`);
      refused(await beat({ address: text }), "address", `address ${label}`);
      refused(await beat({ metadata: { region: text } }), "metadata.region", `metadata value ${label}`);
      refused(await beat({ metadata: { [`k${text}`]: "v" } }), "metadata", `metadata key ${label}`);
      refused(await gw("POST", "/api/hub/locks/h5-lock/acquire", { token: admin, body: { owner: text, ttlMs: 1000 } }), "owner", `owner ${label}`);
    }
    // Declared maxLength 64 on the keys: a 1,000-character key was stored before.
    refused(await beat({ metadata: { ["k".repeat(65)]: "v" } }), "metadata", "metadata key of 65 characters");
    refused(await beat({ metadata: { ["k".repeat(1000)]: "v" } }), "metadata", "metadata key of 1,000 characters");
    const ok = await beat({ version: "2.0.0-rc.1+build", metadata: { ["k".repeat(64)]: "", zone: "eu-west-1a", note: "山田 👨‍👩‍👧" } });
    expect(ok.status, ok.text).toBe(201);
    const owner = await gw("POST", "/api/hub/locks/h5-lock/acquire", { token: admin, body: { owner: "worker 7 (Zoë)", ttlMs: 1000 } });
    expect(owner.status, owner.text).toBe(200);
    expect(failures).toEqual([]);
  });
});

describe("display text on payments and billing", () => {
  it("a payment's description, a refund's reason and a plan's name refuse controls, separators, overrides and invisible-only text (all were taken), and keep text in any script", async () => {
    const plans = async () => Number((await p.pool.query("SELECT count(*) AS n FROM bil_plans")).rows[0].n);
    const before = await plans();
    const intent = "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e";
    for (const [label, text] of HOSTILE_TEXT) {
      const pay = { amount: 100, currency: "usd", paymentMethod: "pm_card_visa", description: text };
      refused(await gw("POST", "/api/payments/intents", { token: alice.token, body: pay }), "description", `description ${label}`);
      refused(await gw("POST", `/api/payments/intents/${intent}/refunds`, { token: admin, body: { reason: text } }), "reason", `refund reason ${label}`);
      refused(await gw("POST", "/api/billing/plans", { token: admin, body: { id: `p-${randomBytes(3).toString("hex")}`, name: text, currency: "usd", amount: 100, interval: "month" } }), "name", `plan name ${label}`);
    }
    expect(await plans()).toBe(before);
    for (const text of FINE_TEXT) {
      const r = await gw("POST", "/api/billing/plans", { token: admin, body: { id: `p-${randomBytes(3).toString("hex")}`, name: text, currency: "usd", amount: 100, interval: "month" } });
      expect(r.status, r.text).toBe(201);
      expect(r.json.name).toBe(text);
    }
    expect(failures).toEqual([]);
  });
});

describe("numbers at the edges", () => {
  it("a Telegram chat id is a non-zero integer of at most 52 bits: 20 digits, 2^52 and 0 are a 400 naming telegramChatId", async () => {
    const put = (telegramChatId: string) => gw("PUT", "/api/notifications/preferences", { token: alice.token, body: { email: null, telegramChatId } });
    for (const id of ["99999999999999999999", "-99999999999999999999", "9223372036854775808", "4503599627370496", "-4503599627370496", "0", "-0", "00000000000000000000"])
      refused(await put(id), "telegramChatId", `chat id ${id}`);
    expect((await gw("GET", "/api/notifications/preferences", { token: alice.token })).json.telegramChatId).toBeNull();
    for (const [id, saved] of [["-1001234567890", "-1001234567890"], ["4503599627370495", "4503599627370495"], ["007", "7"]]) {
      const r = await put(id);
      expect(r.status, r.text).toBe(200);
      expect(r.json.telegramChatId).toBe(saved);
    }
    expect(failures).toEqual([]);
  });
});

describe("values past their maxima", () => {
  it("a webhook URL's host must be one DNS could answer for: an empty label, a label past 63 characters or a name past 253 is a 400 naming url", async () => {
    const post = (url: string) => gw("POST", "/api/notifications/webhooks", { token: alice.token, body: { url } });
    const long = `${"a".repeat(63)}.`.repeat(4);
    for (const url of ["https://a..b/h", `https://${"a".repeat(64)}.com/h`, `https://${"a".repeat(2030)}.com/`, `https://${long}com/h`, "https://-a.example.com/h", "https://a-.example.com/h", "https://a!b.example.com/h"])
      refused(await post(url), "url", url.slice(0, 40));
    for (const url of [`https://${"a".repeat(63)}.example.com/h`, "https://münchen.example/h", "https://hooks.example.com./h"]) {
      const r = await post(url);
      expect(r.status, `${url}: ${r.text}`).toBe(201);
    }
    expect(failures).toEqual([]);
  });
});

describe("privilege boundaries", () => {
  it("an admin's read key reaches admin reads, never an admin write; demoted, the key is refused the admin reads at once", async () => {
    const erin = await user("erin");
    expect((await gw("PUT", `/api/users/admin/users/${erin.id}/role`, { token: admin, body: { role: "admin" } })).status).toBe(200);
    const token = await login(erin.email, PASSWORD);
    const key = (await gw("POST", "/api/users/api-keys", { token, body: { name: "erin's reader", scopes: ["read"] } })).json.key as string;
    const withKey = (method: string, path: string, body?: unknown) =>
      fetch(`${p.gatewayUrl}${path}`, { method, headers: { "x-api-key": key, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined }).then(async (r) => ({ status: r.status, json: await r.json().catch(() => undefined) }));
    const reads = ["/api/hub/fleet", "/api/notifications/dead-letters?all=true", `/api/risk/trading-state/users/${bob.id}/history`];
    for (const path of reads) expect((await withKey("GET", path)).status, path).toBe(200);
    // Writes an admin may make with a session: a key of any scope is refused (SESSION_REQUIRED).
    for (const [method, path, body] of [
      ["PUT", `/api/risk/trading-state/users/${bob.id}`, { state: "halted", reason: "by a key" }],
      ["PUT", `/api/users/admin/users/${bob.id}/role`, { role: "admin" }],
      ["POST", "/api/hub/locks/by-key/acquire", { owner: "key", ttlMs: 1000 }],
      ["POST", "/api/notifications/dead-letters/1/replay", undefined],
    ] as Array<[string, string, unknown]>) {
      const r = await withKey(method, path, body);
      expect([r.status, r.json?.error?.code], `${method} ${path}`).toEqual([403, "SESSION_REQUIRED"]);
    }
    expect((await gw("PUT", `/api/users/admin/users/${erin.id}/role`, { token: admin, body: { role: "trader" } })).status).toBe(200);
    const t0 = Date.now();
    for (;;) {
      const statuses = await Promise.all(reads.map(async (path) => (await withKey("GET", path)).status));
      if (statuses.every((s) => s === 403)) break;
      expect(Date.now() - t0, `still reaching admin reads: ${statuses.join(",")}`).toBeLessThan(PUSHED_WITHIN_MS);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

describe("races on one object", () => {
  it("API keys and webhooks created at once stop at their caps; an admin's role change, disable, enable and delete of one account at once end in one state", async () => {
    const carol = await user("carol");
    const keys = await Promise.all(Array.from({ length: 30 }, (_, i) => gw("POST", "/api/users/api-keys", { token: carol.token, body: { name: `bot ${i}`, scopes: ["read"] } })));
    expect(keys.filter((k) => k.status === 201)).toHaveLength(20); // API_KEY_MAX_ACTIVE_PER_USER
    for (const k of keys.filter((x) => x.status !== 201)) expect([k.status, k.json.error.code]).toEqual([409, "API_KEY_LIMIT"]);
    const hooks = await Promise.all(Array.from({ length: 15 }, (_, i) => gw("POST", "/api/notifications/webhooks", { token: carol.token, body: { url: `https://example.com/hook/${i}` } })));
    expect(hooks.filter((h) => h.status === 201)).toHaveLength(5); // NOTIFY_MAX_WEBHOOKS
    expect((await gw("GET", "/api/notifications/webhooks", { token: carol.token })).json.webhooks).toHaveLength(5);
    // Another user's webhook id: the same 404 as an unknown one, and it stays.
    const hookId = hooks.find((h) => h.status === 201)!.json.id;
    expect((await gw("DELETE", `/api/notifications/webhooks/${hookId}`, { token: bob.token })).status).toBe(404);
    expect((await gw("GET", "/api/notifications/webhooks", { token: carol.token })).json.webhooks).toHaveLength(5);

    const target = await user("target");
    const acts = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        [
          () => gw("PUT", `/api/users/admin/users/${target.id}/role`, { token: admin, body: { role: i % 8 ? "admin" : "trader" } }),
          () => gw("POST", `/api/users/admin/users/${target.id}/disable`, { token: admin }),
          () => gw("POST", `/api/users/admin/users/${target.id}/enable`, { token: admin }),
          () => gw("DELETE", `/api/users/admin/users/${target.id}`, { token: admin }),
        ][i % 4](),
      ),
    );
    for (const a of acts) expect([200, 204, 404], a.text).toContain(a.status);
    expect(acts.filter((a) => a.status === 204)).toHaveLength(1);
    expect((await p.pool.query("SELECT count(*)::int AS n FROM users WHERE id = $1", [target.id])).rows[0].n).toBe(0);
    expect(failures).toEqual([]);
  });

  it("twelve kill switch changes of one user at once: no 5xx, each row's from the previous row's to, the state the last row's", async () => {
    const dave = await user("dave");
    const states = ["halted", "active", "reduce_only"];
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => gw("PUT", `/api/risk/trading-state/users/${dave.id}`, { token: admin, body: { state: states[i % 3], reason: `race ${i}` } })));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    const chain = (await p.pool.query("SELECT from_state, to_state FROM trading_state_changes WHERE user_id = $1 ORDER BY id", [dave.id])).rows;
    // At most one row a request (a set to the state the scope already has may record none).
    expect(chain.length).toBeGreaterThanOrEqual(1);
    expect(chain.length).toBeLessThanOrEqual(12);
    expect(chain[0].from_state).toBe("active");
    for (let i = 1; i < chain.length; i++) expect(chain[i].from_state, `row ${i}`).toBe(chain[i - 1].to_state);
    const now = await gw("GET", `/api/risk/trading-state/users/${dave.id}`, { token: admin });
    const last = chain[chain.length - 1].to_state;
    expect([now.json.state, now.json.enforced]).toEqual([last, last]);
    expect(failures).toEqual([]);
  });
});
