/**
 * Client libraries for the harness and the tests, loaded from the services package (the root
 * package does not depend on them; Node resolves from `services/node_modules`).
 */
import { createRequire } from "node:module";
import { join } from "node:path";

const servicesRequire = createRequire(join(__dirname, "..", "..", "services", "package.json"));

export const pg = servicesRequire("pg") as typeof import("pg");
export const Redis = servicesRequire("ioredis") as typeof import("ioredis").default;
export const kafkajs = servicesRequire("kafkajs") as typeof import("kafkajs");
export const promClient = servicesRequire("prom-client") as typeof import("prom-client");
