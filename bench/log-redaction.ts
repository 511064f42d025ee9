/**
 * What the masking of credentials costs per log line (npx tsx bench/log-redaction.ts [lines]): each
 * kind of line written `lines` times (default 20,000) to a sink that drops it, by each logger in
 * turn, seven rounds (interleaved, so a busy machine weighs on every logger alike), and the median
 * CPU µs per line (the process's user + system time: time spent waiting for a core is not counted)
 * printed for each way of masking:
 *   - none: pino without redaction (the access line of kit/probes.ts skips it: its fields are fixed);
 *   - paths (session 41): pino's redaction with the kit's paths up to session 41, one level deep
 *     (`*.password`): a credential two levels down was written in clear;
 *   - paths to depth 6: the same names with pino's own wildcards repeated (`*.*.password`, ...),
 *     the deepest pino's paths can go without a walker (fast-redact / @pinojs/redact have no `**`);
 *   - kit: the kit's logger as it is now (kit/app.ts createLogger), and its access logger.
 * Figures only, no assertion: the README quotes them (Gateway speed, the access line) and so does
 * services/src/kit/probes.ts. The error column includes the kit's `err` serializer (credential shapes
 * masked in every string of the error, its stack included), which the other rows do not have.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Logger } from "../services/node_modules/pino";
import { createLogger } from "../services/src/kit";
import { accessLogOf } from "../services/src/kit/probes";

// pino is the services package's (the root package does not depend on it), as tests/harness/deps.ts loads its clients.
const pino = createRequire(join(__dirname, "..", "services", "package.json"))("pino") as typeof import("../services/node_modules/pino");
const LINES = Number(process.argv[2] ?? 20_000);
const ROUNDS = 7;
const sink = { write: (_s: string) => undefined };

const ONE_LEVEL = ["password", "newPassword", "token", "accessToken", "refreshToken", "apiKey", "secret"];
const SESSION_41_PATHS = [
  "req.headers.authorization", "req.headers.cookie", 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
  "headers.authorization", "headers.cookie", 'headers["x-api-key"]',
  ...ONE_LEVEL.map((k) => `*.${k}`), ...ONE_LEVEL,
];
const NAMES = [...ONE_LEVEL, "authorization", "cookie", '["x-api-key"]', '["set-cookie"]'];
const DEPTH_6_PATHS = NAMES.flatMap((k) => [0, 1, 2, 3, 4, 5].map((d) => `${"*.".repeat(d)}${k}`.replace(/\.\[/g, "[")).filter((p) => !p.startsWith("[")));

const withPaths = (paths: string[]): Logger =>
  pino({ name: "bench", level: "info", base: { service: "bench" }, redact: { paths, censor: "[REDACTED]" }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
const plain = pino({ name: "bench", level: "info", base: { service: "bench" }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
const kit = createLogger("bench", "info", sink);

const failure = Object.assign(new Error("request failed with status 401"), { config: { url: "https://api.example/v1", headers: { authorization: "Bearer abc", accept: "application/json" } } });
const lines: Record<string, (log: Logger) => void> = {
  access: (log) => log.info({ requestId: randomUUID(), method: "GET", url: "/orders", statusCode: 200, ms: 1.2 }, "request completed"),
  flat: (log) => log.info({ userId: "7f1c", orderId: "a9e2", symbol: "BTCUSDT", quantity: "0.01" }, "order accepted"),
  nested: (log) =>
    log.warn({ user: { id: "7f1c", profile: { name: "n", email: "e@x", password: "p" } }, items: [{ id: 1, token: "t" }, { id: 2, token: "u" }] }, "nested"),
  error: (log) => log.error({ err: failure }, "request failed"),
};

/** CPU µs per line of one run of `LINES` lines. */
function cpuUsPerLine(log: Logger, line: (log: Logger) => void): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < LINES; i++) line(log);
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / LINES;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const loggers: Array<[string, Logger]> = [
  ["none", plain],
  ["paths (session 41)", withPaths(SESSION_41_PATHS)],
  [`paths to depth 6 (${DEPTH_6_PATHS.length})`, withPaths(DEPTH_6_PATHS)],
  ["kit", kit],
  ["kit access logger", accessLogOf(kit)],
];
const kinds = Object.entries(lines);
const samples = loggers.map(() => kinds.map(() => [] as number[]));
for (const [, log] of loggers) for (const [, line] of kinds) for (let i = 0; i < 2_000; i++) line(log); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  loggers.forEach(([, log], l) => kinds.forEach(([, line], k) => samples[l][k].push(cpuUsPerLine(log, line))));
}
console.log(`CPU µs per line (median of ${ROUNDS} interleaved rounds of ${LINES} lines), node ${process.version}`);
console.log(["logger".padEnd(28), ...kinds.map(([k]) => k.padStart(8))].join(""));
loggers.forEach(([name], l) => console.log([name.padEnd(28), ...samples[l].map((s) => median(s).toFixed(2).padStart(8))].join("")));
