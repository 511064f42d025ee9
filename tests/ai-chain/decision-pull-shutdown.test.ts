/**
 * ai-chain-analytics (in process, real ClickHouse and Kafka) closing while its decision pull waits for
 * ai-orchestrator's GET /internal/decisions (a stand-in holding it). Before session 53 the close did
 * not wait for the pull (it stopped the timer only) and the read was bounded by its 5 s alone: the
 * pull went on after the close, its inserts meeting the ClickHouse client closed under them, a
 * "decision pull failed" warning. The read is now cut PEER_CLOSE_GRACE_MS into the close (kit peers
 * `cutOnClose`, its 503 SHUTTING_DOWN) and the close waits for the pull: it ends within the grace,
 * logged at info as cut by the shutdown, not as a failure.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs } from "../harness";
import { useServers } from "../harness/shared";
import { createService, PEER_CLOSE_GRACE_MS } from "../../services/src/kit";
import { ensureKafkaTopics, runClickHouseMigrations } from "../../services/src/migrations";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import { createClickHouse } from "../../services/src/kit/datastores";
import { listen } from "../helpers/http-stand-ins";
import { waitUntil } from "../trading/e2e-helpers";

const srv = useServers("clickhouse", "kafka");
let orch: Server;
let orchUrl: string;
const held: Array<{ url: string; res: ServerResponse }> = [];

beforeAll(async () => {
  const ch = createClickHouse(srv.clickhouse.env);
  await runClickHouseMigrations(ch);
  await ch.close();
  const topics = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await topics.connect();
  await ensureKafkaTopics(topics);
  await topics.disconnect();
  orch = createServer((req, res) => {
    req.resume();
    held.push({ url: req.url ?? "", res });
  });
  orchUrl = await listen(orch);
}, 300_000);

afterAll(async () => {
  for (const h of held) h.res.socket?.destroy();
  orch?.close();
});

describe("ai-chain-analytics closing while its decision pull waits for ai-orchestrator", { timeout: 300_000 }, () => {
  it("the pull's read is cut within the grace and the close waits for it: logged as cut at info, no failure", async () => {
    const lines: Array<Record<string, any>> = [];
    const logStream = new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) });
    const env = { ...srv.env, LOG_LEVEL: "info", CHAIN_POLL_MS: "100", CHAIN_CONSUMER_GROUP: `chains-${randomBytes(3).toString("hex")}`, SERVICE_AI_ORCHESTRATOR_URL: orchUrl };
    const svc = await createService(aiChainAnalytics, { env, defaultMetrics: false, logStream });
    try {
      await waitUntil("the pull asked ai-orchestrator", async () => held.some((h) => h.url.startsWith("/internal/decisions")), 30_000, 20);
      const t0 = performance.now();
      await svc.close();
      const tookMs = performance.now() - t0;
      // The grace, then the rest of the close (the consumer's leave, the clients' close): not the read's 5 s.
      expect(tookMs).toBeGreaterThanOrEqual(PEER_CLOSE_GRACE_MS - 50);
      expect(tookMs).toBeLessThan(PEER_CLOSE_GRACE_MS + 4_000);
      // pino levels: 30 info, 40 warn.
      expect(lines.find((l) => l.msg === "decision pull cut by the shutdown")).toMatchObject({ level: 30 });
      expect(lines.filter((l) => l.msg === "decision pull failed; retrying next tick")).toEqual([]);
    } finally {
      await svc.close().catch(() => undefined);
    }
  });
});
