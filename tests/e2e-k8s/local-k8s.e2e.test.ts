/**
 * The platform on a real single-node Kubernetes cluster (scripts/cluster/, stack `local-k8s`):
 * `pulumi up` of the same program, then what the manifests promise, checked on the live cluster:
 * workloads Ready, HTTPS through the Ingress verified against the stack certificate's CA, the
 * connection strings from the stack outputs, NetworkPolicy enforcement, Pod Security admission,
 * resilience (pod deleted under load, PDB blocking an eviction), a backup Job that restores, a
 * ClickHouse backup Job whose run is recorded, a retraining Job that registers a model, no
 * change on a second preview, nothing left after destroy, nothing left after the cluster stops.
 *
 * Run with `npm run e2e:k8s` (scripts/e2e-k8s.sh builds and starts the cluster first).
 * Nothing here talks to a real outside address: the "internet" is a TEST-NET-3 address (RFC 5737)
 * in a network namespace of this host, behind a veth, for the duration of the test.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pulumi, toolsAvailable } from "../e2e/cli";
import { insertCandleRows, lastTrainResult, plantedCandleRows, registeredModelRows } from "../helpers/planted-candles";
import { cluster, clusterReady, eventually, getJson, httpRequest, ingressRequest, jobSucceeded, kubectl, portForward, root, run, runNetcheck } from "./kube";

const STACK = "local-k8s";
const stackFile = fs.readFileSync(path.join(root, `Pulumi.${STACK}.yaml`), "utf8");
const setting = (key: string) => new RegExp(`^\\s*trading:${key}:\\s*"?([^"\\n]+)"?`, "m").exec(stackFile)?.[1];
const NS = setting("namespace") ?? "ai-trading";
const HOST = setting("ingressHost") ?? "trading.local-k8s.test";
const FAKE_INTERNET = "203.0.113.10"; // TEST-NET-3 (RFC 5737): documentation only, in a netns of this host
const timings: Record<string, number> = {};

describe.skipIf(!toolsAvailable() || !clusterReady())("platform on the local Kubernetes cluster", () => {
  const pulumi = new Pulumi("k8s");
  let stack: Awaited<ReturnType<Pulumi["stack"]>>;
  let ca = "";
  let token = "";
  const env = { KUBECONFIG: cluster.KUBECONFIG_PATH };

  beforeAll(async () => {
    const existing = await kubectl(["get", "namespace", NS], { allowFailure: true });
    if (existing.status === 0) throw new Error(`namespace ${NS} already exists: run 'npm run down -- ${STACK}' first`);
    Object.assign(pulumi.env, env);
    // Enough rate-limit budget for the resilience test's request stream (the stack keeps its own).
    pulumi.configFile(STACK, STACK, { rateLimitMaxRequests: "100000" });
    stack = await pulumi.stack(STACK);
    // The stack's TLS secret: a certificate for the ingress host from the cluster's ingress CA.
    const tls = await run("bash", ["scripts/cluster/ingress-cert.sh", HOST]);
    const dir = tls.stdout.trim();
    ca = fs.readFileSync(path.join(dir, "ca.crt"), "utf8");
    // On stdin, as scripts/up.sh does: `--stack` comes after the arguments, and a key never goes on a command line.
    await stack.run(["config", "set", "--secret", "trading:tlsCertificate"], { input: fs.readFileSync(path.join(dir, "tls.crt"), "utf8") });
    await stack.run(["config", "set", "--secret", "trading:tlsPrivateKey"], { input: fs.readFileSync(path.join(dir, "tls.key"), "utf8") });
    const up = await stack.run(["up", "--yes", "--skip-preview"], { timeoutMs: 45 * 60_000 });
    timings["pulumi up"] = up.seconds;
    const resources = /Resources:\s*\n\s*\+\s*(\d+) created/.exec(up.stdout);
    timings["resources created"] = resources ? Number(resources[1]) : -1;
  });

  afterAll(async () => {
    const down = await stack?.run(["destroy", "--yes", "--skip-preview"], { allowFailure: true, timeoutMs: 20 * 60_000 });
    if (down && !timings["pulumi destroy"]) timings["pulumi destroy"] = down.seconds;
    pulumi.cleanup();
    console.log(`e2e-k8s timings (s): ${JSON.stringify(timings)}`);
  });

  it("reaches every workload Ready: StatefulSets with bound claims, migration Job before the fleet, Deployments available", async () => {
    const sets = (await getJson(["-n", NS, "statefulsets"])).items;
    expect(sets.length).toBeGreaterThan(0);
    for (const s of sets) expect(s.status.readyReplicas ?? 0, s.metadata.name).toBe(s.spec.replicas);
    const claims = (await getJson(["-n", NS, "pvc"])).items;
    for (const s of sets) {
      const own = claims.filter((c: any) => c.metadata.name.endsWith(`-${s.metadata.name}-0`));
      expect(own.length, `claims of ${s.metadata.name}`).toBe(s.spec.volumeClaimTemplates?.length ?? 0);
      for (const c of own) expect(c.status.phase, c.metadata.name).toBe("Bound");
    }
    const migrate = await getJson(["-n", NS, "job", "database-service-migrate"]);
    expect(migrate.status.succeeded).toBe(1);
    const migratedAt = Date.parse(migrate.status.completionTime);
    const deployments = (await getJson(["-n", NS, "deployments"])).items;
    expect(deployments.length).toBeGreaterThan(5);
    for (const d of deployments) {
      expect(d.status.availableReplicas ?? 0, d.metadata.name).toBe(d.spec.replicas);
      if (d.metadata.labels?.["trading.io/role"] === "service") {
        expect(Date.parse(d.metadata.creationTimestamp), `${d.metadata.name} created after the migration`).toBeGreaterThanOrEqual(migratedAt - 1000);
      }
    }
  });

  it("serves HTTPS through the Ingress with the stack's certificate: register, log in, a market order filled and in the portfolio", async () => {
    const req = (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => ingressRequest(HOST, ca, method, p, body, headers);
    const health = await eventually("gateway through the Ingress", () => req("GET", "/api/health"), (r) => r.status === 200, 300);
    // The security headers come from the gateway (no snippet annotation on the Ingress), once each.
    expect(health.headers).toMatchObject({ "strict-transport-security": "max-age=63072000", "x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer" });
    const email = `e2e-k8s-${Date.now()}@example.com`;
    const password = "correct horse battery staple 42";
    const reg = await req("POST", "/api/users/register", { email, password });
    expect(reg.status, reg.text).toBe(201);
    const login = await req("POST", "/api/users/login", { email, password });
    expect(login.status, login.text).toBe(200);
    token = login.json.accessToken;
    const auth = { authorization: `Bearer ${token}` };
    // 0.1: the synthetic BTCUSDT trades near 100, and an order under the minimum notional (1) is
    // rejected (RISK_MIN_ORDER_NOTIONAL). A market order needs a reference price: risk fails closed (NO_REFERENCE_PRICE) until
    // data-bridge has published the symbol's first bar, seconds after a fresh deploy.
    await eventually("a last price for BTCUSDT from data-bridge", () => req("GET", "/api/market/last/BTCUSDT", undefined, auth), (r) => r.status === 200 && Number(r.json?.price) > 0, 180);
    const placed = await eventually(
      "market order accepted",
      () => req("POST", "/api/orders", { symbol: "BTCUSDT", side: "buy", type: "market", quantity: "0.1" }, { ...auth, "idempotency-key": `e2e-k8s-${Date.now()}` }),
      (r) => r.status === 201,
      180,
    );
    const orderId = placed.json.orderId;
    expect(placed.json.status, placed.text).not.toBe("rejected");
    const filled = await eventually("order filled", () => req("GET", `/api/orders/${orderId}`, undefined, auth), (r) => r.json?.status === "filled" || r.json?.order?.status === "filled", 180);
    expect(JSON.stringify(filled.json)).toContain("BTCUSDT");
    const portfolio = await eventually(
      "position in the portfolio",
      () => req("GET", "/api/portfolio", undefined, auth),
      (r) => (r.json?.positions ?? []).some((p: any) => p.symbol === "BTCUSDT" && p.quantity !== "0"),
      120,
    );
    expect(portfolio.status).toBe(200);
    // Plain HTTP is only a redirect to HTTPS.
    const plain = await httpRequest(HOST, "/api/health");
    expect([301, 308], JSON.stringify(plain)).toContain(plain.status);
    expect(plain.location).toBe(`https://${HOST}/api/health`);
  });

  it("hands out connection strings that work through a port-forward", async () => {
    const plain = await stack.outputs(false);
    expect(JSON.stringify(plain.connectionStrings)).not.toMatch(/postgresql:\/\//);
    const outputs = await stack.outputs(true);
    const url = new URL(outputs.connectionStrings.postgres);
    const pf = await portForward(NS, "svc/postgres", Number(url.port || 5432));
    try {
      url.hostname = "127.0.0.1";
      url.port = String(pf.port);
      const client = new Client({ connectionString: url.toString() });
      await client.connect();
      try {
        const r = await client.query("SELECT count(*)::int AS n FROM users");
        expect(r.rows[0].n).toBeGreaterThanOrEqual(1);
      } finally {
        await client.end();
      }
    } finally {
      pf.stop();
    }
    const redisUrl = new URL(outputs.connectionStrings.dragonfly);
    const pf2 = await portForward(NS, `svc/${redisUrl.hostname.split(".")[0]}`, Number(redisUrl.port || 6379));
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = net.connect(pf2.port, "127.0.0.1", () => {
          const pass = decodeURIComponent(redisUrl.password);
          s.write(`*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(pass)}\r\n${pass}\r\n*1\r\n$4\r\nPING\r\n`);
        });
        let got = "";
        s.on("data", (c) => {
          got += c;
          if (got.includes("PONG") || got.includes("-")) {
            s.end();
            resolve(got);
          }
        });
        s.on("error", reject);
        setTimeout(() => reject(new Error(`no reply: ${got}`)), 15_000);
      });
      expect(reply).toBe("+OK\r\n+PONG\r\n");
    } finally {
      pf2.stop();
    }
  });

  it("enforces NetworkPolicy: an unlisted pod cannot reach PostgreSQL, order-management can, no internet egress without internetEgress", async () => {
    // By Service IP, so a DNS failure cannot pass for a refused connection.
    const pgIp = (await getJson(["-n", NS, "service", "postgres"])).spec.clusterIP;
    const denied = await runNetcheck("e2e-unlisted", NS, ["tcp", `${pgIp}:5432`]);
    expect(denied.phase, denied.log).toBe("Failed");
    expect(denied.log).toMatch(new RegExp(`FAIL tcp ${pgIp.replace(/\./g, "\\.")}:5432: .*(timeout|deadline)`));
    const om = (await getJson(["-n", NS, "pods", "-l", "trading.io/workload=order-management"])).items[0].metadata.name;
    const tcp = (host: string, port: number) =>
      kubectl(
        ["-n", NS, "exec", om, "--", "node", "-e", `const s=require("net").connect(${port},"${host}",()=>{console.log("connected");process.exit(0)});s.on("error",e=>{console.log(e.code);process.exit(1)});setTimeout(()=>{console.log("timeout");process.exit(1)},5000)`],
        { allowFailure: true },
      );
    const allowed = await tcp("postgres", 5432);
    expect(allowed.stdout.trim(), allowed.stderr).toBe("connected");

    // "The internet": a TEST-NET-3 address in a network namespace of this host behind a veth (a
    // routed hop, as real egress is: kube-network-policies judges forwarded traffic, not traffic
    // to the node's own addresses), answered by a listener there. A pod in a namespace without
    // policies reaches it (the path works); order-management, without internetEgress, does not.
    const sh = (args: string[]) => run("ip", args);
    await run("ip", ["netns", "del", "e2e-inet"], { allowFailure: true });
    await sh(["netns", "add", "e2e-inet"]);
    let listener: ReturnType<typeof spawn> | undefined;
    try {
      await sh(["link", "add", "e2e-inet0", "type", "veth", "peer", "name", "e2e-inet1"]);
      await sh(["link", "set", "e2e-inet1", "netns", "e2e-inet"]);
      await sh(["addr", "add", "203.0.113.1/24", "dev", "e2e-inet0"]);
      await sh(["link", "set", "e2e-inet0", "up"]);
      await sh(["netns", "exec", "e2e-inet", "ip", "addr", "add", `${FAKE_INTERNET}/24`, "dev", "e2e-inet1"]);
      await sh(["netns", "exec", "e2e-inet", "ip", "link", "set", "e2e-inet1", "up"]);
      listener = spawn("ip", ["netns", "exec", "e2e-inet", process.execPath, "-e", `require("net").createServer((s) => s.end("hello\\n")).listen(443, "${FAKE_INTERNET}")`]);
      await eventually(
        "listener in the fake internet",
        () => new Promise<boolean>((resolve) => {
          const c = net.connect(443, FAKE_INTERNET, () => { c.end(); resolve(true); });
          c.on("error", () => resolve(false));
        }),
        (ok) => ok,
        30,
      );
      await kubectl(["create", "namespace", "e2e-open"], { allowFailure: true });
      const open = await runNetcheck("e2e-open", "e2e-open", ["tcp", `${FAKE_INTERNET}:443`]);
      expect(open.phase, open.log).toBe("Succeeded");
      const blocked = await tcp(FAKE_INTERNET, 443);
      expect(blocked.stdout.trim()).not.toBe("connected");
    } finally {
      listener?.kill();
      await run("ip", ["netns", "del", "e2e-inet"], { allowFailure: true });
      await run("ip", ["link", "del", "e2e-inet0"], { allowFailure: true });
      await kubectl(["delete", "namespace", "e2e-open", "--wait=false"], { allowFailure: true });
    }
  });

  it("rejects a privileged pod (Pod Security admission, restricted)", async () => {
    const ns = await getJson(["namespace", NS]);
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "e2e-privileged", namespace: NS },
      spec: { containers: [{ name: "c", image: "docker.io/local/netcheck:dev", securityContext: { privileged: true } }] },
    };
    const r = await kubectl(["apply", "--dry-run=server", "-f", "-"], { input: JSON.stringify(pod), allowFailure: true });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
  });

  it("survives a pod deletion under load, restores the replicas, and a PDB blocks an eviction that would break it", async () => {
    const target = "portfolio-manager";
    const dep = await getJson(["-n", NS, "deployment", target]);
    expect(dep.spec.replicas).toBeGreaterThanOrEqual(2);
    const auth = { authorization: `Bearer ${token}` };
    const statuses: number[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        try {
          statuses.push((await ingressRequest(HOST, ca, "GET", "/api/portfolio", undefined, auth)).status);
        } catch {
          statuses.push(0);
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 3000));
    const pods = (await getJson(["-n", NS, "pods", "-l", `trading.io/workload=${target}`])).items;
    await kubectl(["-n", NS, "delete", "pod", pods[0].metadata.name, "--wait=false"]);
    await eventually(
      `${target} back to ${dep.spec.replicas} ready replicas`,
      async () => {
        const d = await getJson(["-n", NS, "deployment", target]);
        const ps = (await getJson(["-n", NS, "pods", "-l", `trading.io/workload=${target}`])).items;
        return { ready: d.status.readyReplicas ?? 0, gone: !ps.some((p: any) => p.metadata.name === pods[0].metadata.name) };
      },
      (v) => v.ready === dep.spec.replicas && v.gone,
      300,
    );
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    await load;
    timings["requests during pod deletion"] = statuses.length;
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.filter((s) => s !== 200), `non-200 among ${statuses.length}`).toEqual([]);

    const now = (await getJson(["-n", NS, "pods", "-l", `trading.io/workload=${target}`])).items.map((p: any) => p.metadata.name);
    const evict = (pod: string) =>
      kubectl(["create", "--raw", `/api/v1/namespaces/${NS}/pods/${pod}/eviction`, "-f", "-"], {
        input: JSON.stringify({ apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod, namespace: NS } }),
        allowFailure: true,
      });
    const first = await evict(now[0]);
    expect(first.status, first.stderr).toBe(0);
    const second = await evict(now[1]);
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/disruption budget|TooManyRequests|429/);
    await eventually(`${target} restored after the eviction`, () => getJson(["-n", NS, "deployment", target]), (d) => d.status.readyReplicas === dep.spec.replicas, 300);
  });

  it("runs a backup Job from the PostgreSQL CronJob whose dump restores with the same row counts", async () => {
    // The Jobs removed even when a check fails: the restore's pod, which has no owner, would keep the
    // backup volume's claim, and so the stack's destroy, waiting.
    try {
      await kubectl(["-n", NS, "create", "job", "e2e-backup", "--from=cronjob/postgres-backup"]);
      await kubectl(["-n", NS, "wait", "--for=condition=complete", "job/e2e-backup", "--timeout=600s"], { timeoutMs: 620_000 });
      // The restore runs as the backup job does (same image, credentials, volume, network policy),
      // into a fresh database, and prints each table's row count in the source and the restore.
      const cron = await getJson(["-n", NS, "cronjob", "postgres-backup"]);
      const template = cron.spec.jobTemplate.spec.template;
      // The backup's container alone: its run recorder would record this restore as a postgres-backup run.
      template.spec.containers = template.spec.containers.filter((c: { name: string }) => c.name === "postgres-backup");
      template.spec.containers[0].command = [
        "sh",
        "-c",
        [
          "set -eu",
          "f=$(ls -1t /backups/*.dump | head -n 1)",
          "createdb -h postgres -U trading e2e_restore",
          'pg_restore --no-owner -h postgres -U trading -d e2e_restore "$f"',
          "for t in $(psql -At -h postgres -U trading -d ai_trading -c \"SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1\"); do",
          '  a=$(psql -At -h postgres -U trading -d ai_trading -c "SELECT count(*) FROM \\"$t\\"")',
          '  b=$(psql -At -h postgres -U trading -d e2e_restore -c "SELECT count(*) FROM \\"$t\\"")',
          '  echo "COUNT $t $a $b"',
          "done",
          "dropdb -h postgres -U trading e2e_restore",
          // The backup's run, recorded by its run recorder (the pod's second container).
          `echo "RECORDED $(psql -At -h postgres -U trading -d ai_trading -c "SELECT count(*) FROM scheduled_job_runs WHERE job = 'postgres-backup' AND last_succeeded_at >= last_started_at")"`,
        ].join("\n"),
      ];
      template.spec.restartPolicy = "Never";
      const job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "e2e-restore", namespace: NS }, spec: { backoffLimit: 0, template } };
      await kubectl(["apply", "-f", "-"], { input: JSON.stringify(job) });
      await kubectl(["-n", NS, "wait", "--for=condition=complete", "job/e2e-restore", "--timeout=600s"], { timeoutMs: 620_000 });
      const log = (await kubectl(["-n", NS, "logs", "job/e2e-restore"])).stdout;
      const counts = [...log.matchAll(/^COUNT (\S+) (\d+) (\d+)$/gm)].map((m) => ({ table: m[1], source: Number(m[2]), restored: Number(m[3]) }));
      expect(counts.length, log).toBeGreaterThan(3);
      // Every table but the backup's own run record, which its run recorder writes while pg_dump runs
      // (its start, in the dump or not by timing; its success after it).
      for (const c of counts) if (c.table !== "scheduled_job_runs") expect(c.restored, c.table).toBe(c.source);
      expect(counts.find((c) => c.table === "users")?.source).toBeGreaterThanOrEqual(1);
      expect(log).toMatch(/^RECORDED 1$/m);
    } finally {
      await kubectl(["-n", NS, "delete", "job", "e2e-backup", "e2e-restore", "--ignore-not-found", "--wait=true"]);
    }
  });

  it("runs a backup Job from the ClickHouse CronJob whose run recorder records its start and success in PostgreSQL", async () => {
    const outputs = await stack.outputs(true);
    const pgUrl = new URL(outputs.connectionStrings.postgres);
    const pgForward = await portForward(NS, "svc/postgres", Number(pgUrl.port || 5432));
    try {
      pgUrl.hostname = "127.0.0.1";
      pgUrl.port = String(pgForward.port);
      const query = async (sql: string) => {
        const c = new Client({ connectionString: pgUrl.toString() });
        await c.connect();
        try {
          return (await c.query(sql)).rows;
        } finally {
          await c.end();
        }
      };
      const [{ now }] = await query("SELECT statement_timestamp() AS now");
      await kubectl(["-n", NS, "create", "job", "e2e-ch-backup", "--from=cronjob/clickhouse-backup"]);
      const succeeded = await jobSucceeded(NS, "e2e-ch-backup", 600);
      const logs = (await kubectl(["-n", NS, "logs", "job/e2e-ch-backup", "--all-containers"], { allowFailure: true })).stdout;
      expect(succeeded, logs.slice(-3000)).toBe(true);
      const [run] = await query("SELECT last_started_at, last_succeeded_at FROM scheduled_job_runs WHERE job = 'clickhouse-backup'");
      expect(run?.last_started_at?.getTime(), logs.slice(-3000)).toBeGreaterThanOrEqual(now.getTime());
      expect(run.last_succeeded_at.getTime()).toBeGreaterThanOrEqual(run.last_started_at.getTime());
    } finally {
      pgForward.stop();
    }
    await kubectl(["-n", NS, "delete", "job", "e2e-ch-backup", "--wait=true"]);
  });

  it("runs a retraining Job from ml-predictor's CronJob: bars in ClickHouse become a model in the registry", async () => {
    // Planted bars (a learnable signal) into ClickHouse through a port-forward, as data-bridge writes them.
    const symbol = "RETRAINUSDT";
    const n = 3000;
    const outputs = await stack.outputs(true);
    const ch = new URL(outputs.connectionStrings.clickhouse);
    const chForward = await portForward(NS, `svc/${ch.hostname.split(".")[0]}`, Number(ch.port || 8123));
    try {
      const insert = await insertCandleRows(outputs.connectionStrings.clickhouse, `127.0.0.1:${chForward.port}`, plantedCandleRows(symbol, n, "e2e-k8s-retrain"));
      expect(insert.status, insert.body).toBe(200);
    } finally {
      chForward.stop();
    }
    // The CronJob's own Job template (trainer image, credentials, network policy), told which
    // symbol and how many bars to train on, run now instead of at 03:30.
    const cron = await getJson(["-n", NS, "cronjob", "ml-predictor-retrain"]);
    expect(cron.spec.schedule).toBe("30 3 * * *");
    const template = cron.spec.jobTemplate.spec.template;
    const container = template.spec.containers[0];
    container.env = [...(container.env ?? []), { name: "ML_TRAIN_SYMBOLS", value: symbol }, { name: "ML_TRAIN_BARS", value: String(n) }];
    const job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "e2e-retrain", namespace: NS }, spec: { backoffLimit: 0, template } };
    await kubectl(["apply", "-f", "-"], { input: JSON.stringify(job) });
    const succeeded = await jobSucceeded(NS, "e2e-retrain", 900);
    const log = (await kubectl(["-n", NS, "logs", "job/e2e-retrain"], { allowFailure: true })).stdout;
    expect(succeeded, log.slice(-3000)).toBe(true);
    const result = lastTrainResult(log);
    expect(result, log.slice(-3000)).toBeDefined();
    const pgUrl = new URL(outputs.connectionStrings.postgres);
    const pgForward = await portForward(NS, "svc/postgres", Number(pgUrl.port || 5432));
    try {
      pgUrl.hostname = "127.0.0.1";
      pgUrl.port = String(pgForward.port);
      expect(await registeredModelRows(pgUrl.toString(), result!.version)).toEqual([{ symbols: [symbol] }]);
    } finally {
      pgForward.stop();
    }
    await kubectl(["-n", NS, "delete", "job", "e2e-retrain", "--wait=true"]);
  });

  it("shows no change on a second preview", async () => {
    const preview = await stack.run(["preview", "--expect-no-changes", "--diff"]);
    timings["pulumi preview"] = preview.seconds;
  });

  it("destroys every object of the namespace and every volume", async () => {
    const before = (await getJson(["pv"])).items.filter((p: any) => p.spec.claimRef?.namespace === NS).map((p: any) => p.metadata.name);
    expect(before.length).toBeGreaterThan(0);
    const down = await stack.run(["destroy", "--yes", "--skip-preview"], { timeoutMs: 20 * 60_000 });
    timings["pulumi destroy"] = down.seconds;
    await eventually("namespace gone", () => kubectl(["get", "namespace", NS], { allowFailure: true }), (r) => r.status !== 0, 300);
    await eventually(
      "volumes released and deleted",
      async () => (await getJson(["pv"])).items.filter((p: any) => before.includes(p.metadata.name)).length,
      (n) => n === 0,
      300,
    );
    const dirs = fs.existsSync(path.join(cluster.K8S_CACHE, "volumes")) ? fs.readdirSync(path.join(cluster.K8S_CACHE, "volumes")) : [];
    expect(dirs.filter((d) => d.includes(`_${NS}_`))).toEqual([]);
  });
});
