/**
 * The cron runner's entry point (kit/cron-runner.ts), the scheduler of scheduled jobs on runtimes
 * without one (Docker): runs the command after `--` at each tick of `--schedule`, never two at
 * once, and serves its status on `--port` (GET /health, GET /metrics).
 *
 *   node dist/services/src/cron.js --name ml-retrain --schedule "30 3 * * *" [--timeout 3600] [--port 9464] \
 *     -- node dist/services/src/main.js ml-predictor train
 *
 * --timeout: a run's time limit in seconds (SIGTERM, then SIGKILL 30 s later); none, unbounded.
 * SIGTERM / SIGINT: no new runs; a running job gets SIGTERM and is waited for.
 */
import { parseArgs } from "node:util";
import { createLogger } from "./kit/app";
import { loadConfig, logLevelEnv } from "./kit/config";
import { CronRunner, serveRunnerStatus } from "./kit/cron-runner";

export const CRON_STATUS_PORT = 9464;

function usage(problem: string): never {
  process.stderr.write(`${JSON.stringify({ level: 50, time: new Date().toISOString(), msg: `cron runner: ${problem}` })}\n`);
  process.stderr.write('usage: cron.js --name NAME --schedule "m h dom mon dow" [--timeout SECONDS] [--port N] -- COMMAND [ARGS...]\n');
  process.exit(2);
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const split = argv.indexOf("--");
  if (split < 0 || split === argv.length - 1) usage("no command after --");
  let values: { name?: string; schedule?: string; timeout?: string; port?: string };
  try {
    ({ values } = parseArgs({ args: argv.slice(0, split), options: { name: { type: "string" }, schedule: { type: "string" }, timeout: { type: "string" }, port: { type: "string" } } }));
  } catch (e) {
    usage((e as Error).message);
  }
  if (!values.name || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(values.name)) usage("--name must be a lowercase name");
  if (!values.schedule) usage("--schedule is required");
  const port = Number(values.port ?? CRON_STATUS_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be a port number, got '${values.port}'`);
  const timeoutSeconds = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutSeconds !== undefined && !(Number.isInteger(timeoutSeconds) && timeoutSeconds > 0)) usage(`--timeout must be a positive whole number of seconds, got '${values.timeout}'`);
  // LOG_LEVEL as every service reads it: a level pino does not know was an unhandled rejection's stack trace.
  let level: string;
  try {
    level = loadConfig("cron runner", { LOG_LEVEL: logLevelEnv() }).LOG_LEVEL;
  } catch (e) {
    usage((e as Error).message);
  }
  const log = createLogger(`cron:${values.name}`, level);
  let runner: CronRunner;
  try {
    runner = new CronRunner({ name: values.name, schedule: values.schedule, command: argv.slice(split + 1), timeoutSeconds, log });
  } catch (e) {
    usage(`invalid --schedule '${values.schedule}': ${(e as Error).message}`);
  }
  const { server } = await serveRunnerStatus(runner, port);
  runner.start();
  const shutdown = (signal: string) => {
    log.info({ signal }, "stopping the scheduler");
    void runner.stop().then(() => server.close(() => process.exit(0)));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

if (require.main === module) void main();
