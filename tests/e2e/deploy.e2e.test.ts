/**
 * `pulumi up` of the dev stack on the local Docker engine, for real: the platform comes up, a user
 * logs in through Nginx over HTTPS, places an order and reads it back; a connection string from the
 * stack outputs works; a second preview shows no change; destroy leaves nothing behind.
 */
import * as fs from "fs";
import * as https from "https";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../services/src/catalog";
import { FEATURE_NAMES } from "../../services/src/ml/features";
import { kafkaTopics } from "../../services/src/migrations/kafka";
import { insertCandleRows, lastTrainResult, plantedCandleRows, registeredModelRows } from "../helpers/planted-candles";
import { docker, Pulumi, toolsAvailable } from "./cli";

const HTTPS_PORT = 8443;
const HTTP_PORT = 8080;
const PREFIX = "ai-trading-dev";
const timings: Record<string, number> = {};

/** HTTPS request to the local Nginx; its certificate is self-signed, so it is not verified here. */
function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, port = HTTPS_PORT, tls = true) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any; text: string }>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const mod = tls ? https : require("http");
    const req = mod.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method,
        rejectUnauthorized: false,
        headers: { ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}), ...headers },
        timeout: 15_000,
      },
      (res: any) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c));
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    if (data) req.write(data);
    req.end();
  });
}

/** The stack's own Prometheus API (`path` under /api/v1), asked from inside its container: it listens on the stack's network only. */
function prometheusApi<T>(path: string): T {
  return (JSON.parse(docker(["exec", `${PREFIX}-prometheus`, "curl", "-fsS", `http://127.0.0.1:9090/api/v1/${path}`])) as { data: T }).data;
}
type Alert = { labels: Record<string, string>; state: string };
/** The alerts Prometheus holds (pending or firing) that `match` keeps. */
const alertsWhere = (match: (labels: Record<string, string>) => boolean) => async () => prometheusApi<{ alerts: Alert[] }>("alerts").alerts.filter((a) => match(a.labels));

async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, seconds = 180): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (ok(v)) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`${what} not reached in ${seconds}s; last: ${JSON.stringify(last instanceof Error ? last.message : last)?.slice(0, 800)}`);
}

describe.skipIf(!toolsAvailable())("dev stack on the local Docker engine", () => {
  const pulumi = new Pulumi("dev");
  let stack: Awaited<ReturnType<Pulumi["stack"]>>;
  let accessToken = "";

  beforeAll(async () => {
    const clash = docker(["ps", "-a", "--filter", `name=${PREFIX}-`, "--format", "{{.Names}}"]);
    if (clash) throw new Error(`containers of a dev stack already exist (${clash.split("\n")[0]}, ...): run scripts/down.sh first`);
    pulumi.configFile("dev", "dev");
    stack = await pulumi.stack("dev");
    const up = await stack.run(["up", "--yes", "--skip-preview"], { timeoutMs: 30 * 60_000 });
    timings["pulumi up"] = up.seconds;
  });

  afterAll(async () => {
    // Destroy even when a test failed, so the machine is left clean.
    const down = await stack?.run(["destroy", "--yes", "--skip-preview"], { allowFailure: true, timeoutMs: 15 * 60_000 });
    if (down && !timings["pulumi destroy"]) timings["pulumi destroy"] = down.seconds;
    pulumi.cleanup();
    console.log(`e2e timings (s): ${JSON.stringify(timings)}`);
  });

  it("serves the fleet's health through Nginx over HTTPS, and HTTP only redirects", async () => {
    const health = await eventually("fleet healthy", () => request("GET", "/api/health"), (r) => r.status === 200, 240);
    // Keyed by public route since session 52 (h7: error and health bodies name no internal service).
    for (const s of catalog.filter((x) => x.name !== "api-gateway")) expect(health.json.services, s.name).toHaveProperty([`/api/${s.route}/`], expect.objectContaining({ status: "ok" }));
    // Once each: Nginx hides the gateway's copies and sets its own (a second copy would be joined with ", ").
    const security = { "strict-transport-security": "max-age=63072000", "x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer" };
    expect(health.headers).toMatchObject(security);
    expect((await request("GET", "/nowhere")).headers).toMatchObject(security);
    const plain = await request("GET", "/api/health", undefined, {}, HTTP_PORT, false);
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://127.0.0.1:${HTTPS_PORT}/api/health`);
  });

  it("serves the merged OpenAPI document and the docs page at /api/docs through Nginx", async () => {
    // A service that does not answer the gateway in time has its route named in x-unavailable-routes and
    // tried again at the next request (a partial document is never cached): right after the deploy,
    // on a loaded machine, wait for the complete document; a service that never answers still fails.
    const doc = await eventually("complete OpenAPI document", () => request("GET", "/api/docs/openapi.json"), (r) => r.status === 200 && !r.json?.["x-unavailable-routes"], 120);
    const body = doc.json as { openapi: string; paths: Record<string, unknown>; "x-unavailable-routes"?: string[] };
    expect(body.openapi).toBe("3.1.0");
    expect(body["x-unavailable-routes"]).toBeUndefined();
    for (const s of catalog.filter((x) => x.route)) expect(Object.keys(body.paths).some((p) => p.startsWith(`/api/${s.route}/`)), s.name).toBe(true);
    expect((await request("GET", "/api/docs")).status).toBe(301); // Nginx: to /api/docs/
    const page = await request("GET", "/api/docs/");
    expect(page.status).toBe(200);
    expect(String(page.headers["content-type"])).toMatch(/text\/html/);
    const asset = await request("GET", "/api/docs/static/swagger-ui-bundle.js");
    expect(asset.status).toBe(200);
  });

  it("registers and logs a user in through Nginx and the gateway", async () => {
    const email = `e2e-${Date.now()}@example.com`;
    const password = "correct horse battery staple 42";
    const reg = await request("POST", "/api/users/register", { email, password });
    expect(reg.status, reg.text).toBe(201);
    const login = await request("POST", "/api/users/login", { email, password });
    expect(login.status, login.text).toBe(200);
    accessToken = login.json.accessToken;
    expect(accessToken).toBeTruthy();
    const me = await request("GET", "/api/users/me", undefined, { authorization: `Bearer ${accessToken}` });
    expect(me.status).toBe(200);
    expect(me.json.user?.email ?? me.json.email).toBe(email);
    const anonymous = await request("GET", "/api/users/me");
    expect(anonymous.status).toBe(401);
  });

  it.skipIf(!catalog.some((s) => s.name === "order-management"))("places an order and reads it back", async () => {
    const auth = { authorization: `Bearer ${accessToken}` };
    const placed = await request(
      "POST",
      "/api/orders/",
      { symbol: "BTCUSDT", side: "buy", type: "limit", quantity: "0.01", limitPrice: "1000", timeInForce: "GTC" },
      { ...auth, "idempotency-key": `e2e-${Date.now()}` },
    );
    expect([200, 201, 202], placed.text).toContain(placed.status);
    const id = placed.json.order?.id ?? placed.json.order?.orderId ?? placed.json.id ?? placed.json.orderId;
    expect(id).toBeTruthy();
    const read = await request("GET", `/api/orders/${id}`, undefined, auth);
    expect(read.status, read.text).toBe(200);
    expect(JSON.stringify(read.json)).toContain("BTCUSDT");
  });

  it("connects to PostgreSQL with the connection string from the stack outputs", async () => {
    const plain = await stack.outputs(false);
    expect(JSON.stringify(plain.connectionStrings)).not.toMatch(/postgresql:\/\//); // secret unless asked
    const outputs = await stack.outputs(true);
    const client = new Client({ connectionString: outputs.connectionStrings.postgres });
    await client.connect();
    try {
      const r = await client.query("SELECT count(*)::int AS n FROM users");
      expect(r.rows[0].n).toBeGreaterThanOrEqual(1);
    } finally {
      await client.end();
    }
  });

  it("runs Weaviate from the local image: healthy, API key required, the platform's classes, vector search, the orchestrator connected", async () => {
    await eventually("weaviate healthy", async () => docker(["inspect", "-f", "{{.State.Health.Status}}", `${PREFIX}-weaviate`]), (s) => s === "healthy", 240);
    // Containers are created from the image ID the RemoteImage resolved (pinned, so .Config.Image
    // is a sha256): the tags of that image say which one it is.
    const imageId = docker(["inspect", "-f", "{{.Image}}", `${PREFIX}-weaviate`]);
    expect(docker(["image", "inspect", "-f", "{{json .RepoTags}}", imageId])).toMatch(/"localhost\/ai-trading\/weaviate:/);
    expect(docker(["inspect", "-f", "{{.Config.User}}", `${PREFIX}-weaviate`])).toBe("weaviate");
    const outputs = await stack.outputs(true);
    const m = /^(http:\/\/\S+) \(Authorization: Bearer (\S+)\)$/.exec(outputs.connectionStrings.weaviate);
    expect(m, "weaviate connection string").toBeTruthy();
    const [, url, key] = m!;
    const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    expect((await fetch(`${url}/v1/schema`)).status).toBe(401);
    // database-service's migrate job created the classes (MarketRegime is the orchestrator's memory).
    const schema = await eventually("weaviate classes", async () => (await fetch(`${url}/v1/schema`, { headers: auth })).json(), (j: any) => j.classes?.length > 0, 120);
    expect(schema.classes.map((c: { class: string }) => c.class)).toEqual(expect.arrayContaining(["MarketRegime", "NewsArticle", "StrategyDoc"]));
    const version = `e2e-${Date.now()}`;
    // Vectors of the class's real length (the model's features, what the training job indexes): a
    // first vector of another length would fix the index's dimension and the retraining's regimes
    // would then be refused.
    const unit = (k: number) => FEATURE_NAMES.map((_, j) => (j === k ? 1 : 0));
    for (const [i, v] of [unit(0), unit(1)].entries()) {
      const r = await fetch(`${url}/v1/objects`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ class: "MarketRegime", vector: v, properties: { modelVersion: version, symbol: "BTCUSDT", windowEnd: new Date(i * 60_000).toISOString(), horizonBars: 1, forwardReturn: i } }),
      });
      expect(r.status, await r.text()).toBe(200);
    }
    const q = await fetch(`${url}/v1/graphql`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({
        query: `{ Get { MarketRegime(nearVector: {vector: [${FEATURE_NAMES.map((_, j) => (j === 0 ? 0.9 : j === 1 ? 0.1 : 0)).join(", ")}]}, where: {path: ["modelVersion"], operator: Equal, valueText: "${version}"}, limit: 2) { forwardReturn _additional { distance } } } }`,
      }),
    });
    const got = (await q.json()).data.Get.MarketRegime;
    expect(got.map((o: { forwardReturn: number }) => o.forwardReturn)).toEqual([0, 1]);
    // The orchestrator's own readiness probe reaches Weaviate with its key (regime lookups use it).
    const ready = await eventually(
      "ai-orchestrator ready with Weaviate",
      async () => JSON.parse(docker(["exec", `${PREFIX}-ai-orchestrator`, "node", "-e", "fetch('http://127.0.0.1:8020/ready').then(r => r.text()).then(t => console.log(t))"])),
      (j: any) => j.dependencies?.weaviate?.status === "ok",
      120,
    );
    expect(ready.dependencies.weaviate).toMatchObject({ status: "ok" });
  });

  it("schedules ml-predictor's retraining in the trainer image: the cron runner is healthy, and a run trains and registers a model", async () => {
    const name = `${PREFIX}-ml-predictor-retrain`;
    await eventually("retraining scheduler healthy", async () => docker(["inspect", "-f", "{{.State.Health.Status}}", name]), (s) => s === "healthy", 240);
    const imageId = docker(["inspect", "-f", "{{.Image}}", name]);
    expect(docker(["image", "inspect", "-f", "{{json .RepoTags}}", imageId])).toMatch(/"localhost\/ai-trading\/trainer:/);
    expect(docker(["inspect", "-f", "{{.Config.User}}", name])).toBe("10001:10001");
    const status = JSON.parse(docker(["exec", name, "node", "-e", "fetch('http://127.0.0.1:9464/health').then(r => r.text()).then(t => console.log(t))"]));
    expect(status).toMatchObject({ job: "ml-predictor-retrain", schedule: "30 3 * * *", nextRunAt: expect.any(String) });

    // What a tick runs, run now in the same container: bars in ClickHouse -> Python in the image ->
    // a model in the registry (PostgreSQL).
    const symbol = "RETRAINUSDT";
    const n = 3000;
    const outputs = await stack.outputs(true);
    const insert = await insertCandleRows(outputs.connectionStrings.clickhouse, new URL(outputs.connectionStrings.clickhouse).host, plantedCandleRows(symbol, n, "e2e-retrain"));
    expect(insert.status, insert.body).toBe(200);
    const out = docker(["exec", "-e", `ML_TRAIN_SYMBOLS=${symbol}`, "-e", `ML_TRAIN_BARS=${n}`, name, "node", "dist/services/src/main.js", "ml-predictor", "train"]);
    const result = lastTrainResult(out);
    expect(result, out.slice(-2000)).toBeDefined();
    expect(await registeredModelRows(outputs.connectionStrings.postgres, result!.version)).toEqual([{ symbols: [symbol] }]);
  });

  it("fires ServiceDown in Prometheus when a service stops, and clears it once the service is back", async () => {
    // The shipped rule (components/monitoring/prometheus.ts: up == 0 for 2m), on the stack's own
    // Prometheus and scrape interval, not a test copy of it. revenue-analytics: no later test needs it.
    const job = "revenue-analytics";
    const alerts = alertsWhere((l) => l.alertname === "ServiceDown" && l.job === job);
    expect(await alerts()).toEqual([]);
    const t0 = Date.now();
    docker(["stop", `${PREFIX}-${job}`]);
    try {
      const firing = await eventually("ServiceDown firing", alerts, (a) => a.some((x) => x.state === "firing"), 300);
      expect(firing[0].labels.severity).toBe("critical");
      timings["ServiceDown firing after stop"] = Math.round((Date.now() - t0) / 1000);
    } finally {
      docker(["start", `${PREFIX}-${job}`]);
    }
    await eventually("ServiceDown cleared", alerts, (a) => a.length === 0, 180);
    await eventually("fleet healthy again", () => request("GET", "/api/health"), (r) => r.status === 200, 120);
  });

  it("fires MessagesSetAside when a poison message reaches trading.orders: each consumer sets it aside, none crash-loops", async () => {
    // Sent from a service container with its own broker address and the image's kafkajs: the
    // broker is reachable only on the stack's network.
    const alerts = alertsWhere((l) => l.alertname === "MessagesSetAside" && l.topic === "trading.orders");
    expect(await alerts()).toEqual([]);
    const send = `const { Kafka, logLevel } = require("kafkajs");
      const p = new Kafka({ clientId: "e2e-poison", brokers: process.env.KAFKA_BROKERS.split(","), logLevel: logLevel.NOTHING }).producer();
      p.connect().then(() => p.send({ topic: "trading.orders", messages: [{ key: "e2e-poison", value: "{not json" }] })).then(() => p.disconnect())
        .then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`;
    const t0 = Date.now();
    docker(["exec", `${PREFIX}-order-management`, "node", "-e", send]);
    const firing = await eventually("MessagesSetAside firing for trading.orders", alerts, (a) => a.some((x) => x.state === "firing" && x.labels.service === "trading-engine"), 300);
    timings["MessagesSetAside firing after the poison message"] = Math.round((Date.now() - t0) / 1000);
    expect(firing.find((x) => x.labels.service === "trading-engine")!.labels).toMatchObject({ severity: "warning", consumer_group: "trading-engine" });
    // Set aside, not retried: the platform still answers, and the order path still fills (the consumers moved past it).
    await eventually("fleet healthy", () => request("GET", "/api/health"), (r) => r.status === 200, 120);
  });

  it("reports kafka_consumer_lag for every partition a consumer holds, from the broker, not only those that delivered a batch", async () => {
    // trading-engine is the only member of its group: every partition of trading.orders is its own.
    const partitions = kafkaTopics.find((t) => t.name === "trading.orders")!.partitions;
    const query = encodeURIComponent('kafka_consumer_lag{service="trading-engine",topic="trading.orders"}');
    const series = async () => prometheusApi<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`query?query=${query}`).result;
    const all = await eventually(`${partitions} lag series`, series, (r) => r.length === partitions, 120);
    expect(all.map((r) => Number(r.value[1]))).toEqual(Array(partitions).fill(0)); // caught up, the poison message set aside included
  });

  it("runs every container under the PID limit of its workload kind, none of them ever reaching it", () => {
    // The stack's defaults (trading:dockerPidsLimit*): jobs 256, datastores and monitoring (stateful) 4096, the rest 512.
    const expected: Record<string, number> = { job: 256, datastore: 4096, monitoring: 4096, service: 512, edge: 512 };
    const names = docker(["ps", "-a", "--filter", `name=${PREFIX}-`, "--format", "{{.Names}}"]).split("\n").filter(Boolean).sort();
    expect(names.length).toBeGreaterThan(10);
    const rows: string[] = [];
    for (const name of names) {
      const [id, limit, role, running] = docker(["inspect", "-f", '{{.Id}} {{.HostConfig.PidsLimit}} {{index .Config.Labels "trading.io/role"}} {{.State.Running}}', name]).split(" ");
      expect(Number(limit), name).toBe(expected[role]);
      // The kernel's pids controller: current tasks (processes and threads) and how often a fork was
      // refused at the limit ("max N" in pids.events), read from the host (cgroup v1 or v2, cgroupfs or systemd driver).
      const dir = [`/sys/fs/cgroup/pids/docker/${id}`, `/sys/fs/cgroup/docker/${id}`, `/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/pids/system.slice/docker-${id}.scope`].find((d) =>
        fs.existsSync(`${d}/pids.events`),
      );
      const read = (f: string) => (dir && fs.existsSync(`${dir}/${f}`) ? fs.readFileSync(`${dir}/${f}`, "utf8").trim() : "?");
      const refused = read("pids.events").match(/max (\d+)/)?.[1] ?? "?";
      if (refused !== "?") expect(Number(refused), `${name}: forks refused at the PID limit`).toBe(0);
      rows.push(`${name.slice(PREFIX.length + 1).padEnd(28)} ${role.padEnd(10)} limit ${limit.padStart(5)} current ${(running === "true" ? read("pids.current") : "exited").padStart(6)} peak ${read("pids.peak").padStart(5)} refused ${refused}`);
    }
    console.log(`PID limits and use after the e2e traffic:\n${rows.join("\n")}`);
  });

  // Session 44: credentials were plain container variables, shown by `docker inspect` to anyone with the socket.
  it("shows no credential in any container's variables (docker inspect): services and datastores read them from owner-only files", async () => {
    const outputs = await stack.outputs(true);
    const pg = new URL(outputs.connectionStrings.postgres);
    const ch = new URL(outputs.connectionStrings.clickhouse);
    const weaviateKey = /Bearer (\S+)\)$/.exec(outputs.connectionStrings.weaviate)![1];
    const secrets = [decodeURIComponent(pg.password), decodeURIComponent(ch.password), weaviateKey].filter((v) => v.length >= 16);
    expect(secrets).toHaveLength(3);
    const names = docker(["ps", "-a", "--filter", `name=${PREFIX}-`, "--format", "{{.Names}}"]).split("\n").filter(Boolean).sort();
    const leaks: string[] = [];
    for (const name of names) {
      const env = JSON.parse(docker(["inspect", "-f", "{{json .Config.Env}}", name])) as string[];
      for (const e of env) if (secrets.some((v) => e.includes(v))) leaks.push(`${name}: ${e.slice(0, e.indexOf("="))}`);
    }
    expect(leaks).toEqual([]);
    const um = JSON.parse(docker(["inspect", "-f", "{{json .Config.Env}}", `${PREFIX}-user-management`])) as string[];
    expect(um).toEqual(expect.arrayContaining(["POSTGRES_URL_FILE=/run/secrets/postgres_url", "JWT_SECRET_FILE=/run/secrets/jwt_secret"]));
    expect(docker(["exec", `${PREFIX}-user-management`, "stat", "-c", "%a %u", "/run/secrets/jwt_secret"])).toBe("400 10001");
  });

  it("shows no change on a second preview", async () => {
    const preview = await stack.run(["preview", "--expect-no-changes", "--diff"]);
    timings["pulumi preview"] = preview.seconds;
  });

  it("destroys every container, volume and network", async () => {
    const down = await stack.run(["destroy", "--yes", "--skip-preview"], { timeoutMs: 15 * 60_000 });
    timings["pulumi destroy"] = down.seconds;
    expect(docker(["ps", "-a", "--filter", `name=${PREFIX}-`, "--format", "{{.Names}}"])).toBe("");
    expect(docker(["volume", "ls", "--filter", `name=${PREFIX}-`, "--format", "{{.Name}}"])).toBe("");
    expect(docker(["network", "ls", "--filter", `name=${PREFIX}-`, "--format", "{{.Name}}"])).toBe("");
  });
});
