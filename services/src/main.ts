/**
 * Entry point of the services image: `node dist/main.js [service] [command] [args...]`.
 * The service is argv[2] when it names a catalog service, else SERVICE_NAME; a following word is a
 * one-shot command of that service (e.g. `database-service migrate`).
 */
// First: tracing must be set up before the instrumented libraries load.
import "./kit/telemetry/preload";
import { catalog, findService } from "./catalog";
import { ConfigError } from "./kit/config";
import { runCommand, runService } from "./kit/service";
import { registry } from "./registry";

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ level: 50, time: new Date().toISOString(), msg: message })}\n`);
  process.exit(1);
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  let name = process.env.SERVICE_NAME;
  let rest = argv;
  // Without SERVICE_NAME the first argument is the service; with it, a first argument that is not
  // a catalog name is a command of that service.
  if (argv[0] && (!name || findService(argv[0]))) {
    if (name && name !== argv[0]) fail(`SERVICE_NAME=${name} conflicts with argument ${argv[0]}`);
    name = argv[0];
    rest = argv.slice(1);
  }
  const names = catalog.map((s) => s.name).join(", ");
  if (!name) fail(`No service selected: set SERVICE_NAME or pass the name as first argument (catalog: ${names})`);
  if (!findService(name)) fail(`Unknown service "${name}" (catalog: ${names})`);
  const load = registry[name];
  if (!load) fail(`Service "${name}" is in the catalog but not implemented in this image (implemented: ${Object.keys(registry).join(", ")})`);
  const mod = await load();
  try {
    if (rest.length > 0) {
      const code = await runCommand(mod, rest[0], rest.slice(1));
      process.exit(code);
    }
    await runService(mod);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message);
    fail(`${name} failed to start: ${(e as Error).stack ?? String(e)}`);
  }
}

if (require.main === module) void main();
