/**
 * Client libraries for the harness and the tests, loaded from the services package (the root
 * package does not depend on them; Node resolves from `services/node_modules`). Their types come
 * from the same folders by relative path, so tsc (tsconfig.tests.json) and Node agree on where a
 * module lives: a bare `import ... from "kafkajs"` in a test resolves for neither. Tests name the
 * types as `KafkaJs.Producer`, `IORedis.Redis`.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { patchKafkaJsIdleLoop } from "../../services/src/kit/datastores/kafkajs-idle-loop";
import type * as KafkaJs from "../../services/node_modules/kafkajs";
import type * as IORedis from "../../services/node_modules/ioredis";
import type * as PromClient from "../../services/node_modules/prom-client";

const servicesRequire = createRequire(join(__dirname, "..", "..", "services", "package.json"));

/** The root package has pg and @types/pg too (same version, services' copy is the one loaded). */
export const pg = servicesRequire("pg") as typeof import("pg");
/** ioredis' module.exports is the Redis class carrying every named export (ReplyError, Cluster...). */
export const Redis = servicesRequire("ioredis") as typeof IORedis.default & typeof IORedis;
export const kafkajs = servicesRequire("kafkajs") as typeof KafkaJs;
// The load generators and the tests' own clients without kafkajs' idle 1 ms timer loop, as the services.
patchKafkaJsIdleLoop(servicesRequire);
export const promClient = servicesRequire("prom-client") as typeof PromClient;
/** ws ships no types: they are services' @types/ws. */
export const ws = servicesRequire("ws") as typeof import("../../services/node_modules/@types/ws");

export type { KafkaJs, IORedis };
