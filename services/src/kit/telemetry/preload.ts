/**
 * Imported first by main.ts: starts tracing before any instrumented library (pg, ioredis, kafkajs)
 * is loaded, for the service main.ts will run (SERVICE_NAME, else the first argument).
 */
import { findService } from "../../catalog";
import { startTelemetry } from "./index";

const name = process.env.SERVICE_NAME || process.argv[2];
const def = name ? findService(name) : undefined;
if (def) {
  try {
    startTelemetry({ service: def.name, env: process.env, entryPoint: def.entryPoint });
  } catch (e) {
    process.stderr.write(`${JSON.stringify({ level: 50, time: new Date().toISOString(), service: def.name, msg: `Invalid tracing configuration: ${(e as Error).message}` })}\n`);
    process.exit(1);
  }
}
