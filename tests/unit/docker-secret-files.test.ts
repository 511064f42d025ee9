/**
 * Session 44: on the Docker target a credential is no container variable (`docker inspect` shows
 * those to anyone with the Docker socket, and every child process inherits them). A workload whose
 * image reads `<NAME>_FILE` (the services' kit, the local datastore images' entrypoints, Grafana's
 * `__FILE`) gets each secret as an owner-only file under /run/secrets, a Pulumi secret in the state.
 * Runs the whole program under mocks that record every resource's inputs (tests/helpers/program.ts).
 */
import { describe, expect, it } from "vitest";
import { dockerSecretsAsFiles } from "../../components/runtime/docker";
import type { WorkloadSpec } from "../../components/workload";
import { findService } from "../../services/src/catalog";
import { datastoreEnv, isSecret, type ConfigSchema } from "../../services/src/kit";
import { commonEnv } from "../../services/src/kit/service";
import { registry } from "../../services/src/registry";
import { byType, type ProgramRun, type RecordedResource, runProgram } from "../helpers/program";

const CONTAINER = "docker:index/container:Container";

interface Upload {
  file: string;
  content: string;
  permissions: string;
  owner?: string;
  group?: string;
}

const envOf = (c: RecordedResource): Record<string, string> =>
  Object.fromEntries((c.inputs.envs as string[] | undefined ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
const uploadsOf = (c: RecordedResource): Upload[] => (c.inputs.uploads as Upload[] | undefined) ?? [];

/**
 * The container variables holding a credential: a generated one (the mocks' RandomPassword results
 * `Mock<name>x...`, RandomBytes `abab...`: tests/helpers/program.ts) or one of `given`.
 */
function leaks(run: ProgramRun, given: string[]): string[] {
  const generated = /Mock[A-Za-z0-9]{6,}|(ab){16,}/;
  const leaked: string[] = [];
  for (const c of byType(run, CONTAINER)) {
    for (const [k, v] of Object.entries(envOf(c))) {
      if (generated.test(v) || given.some((g) => v.includes(g))) leaked.push(`${c.name}: ${k}`);
    }
  }
  return leaked;
}

/** Each NAME_FILE (NAME__FILE) variable names a secret upload owned by the container's user, mode 0400, secret in the state. */
function checkFiles(c: RecordedResource, suffix: "_FILE" | "__FILE"): string[] {
  const env = envOf(c);
  const uploads = new Map(uploadsOf(c).map((u) => [u.file, u]));
  const names = Object.keys(env).filter((k) => k.endsWith(suffix) && env[k].startsWith("/run/secrets/"));
  for (const k of names) {
    const u = uploads.get(env[k]);
    expect(u, `${c.name}: ${k}`).toBeDefined();
    expect(u!.permissions, `${c.name}: ${k}`).toBe("0400");
    expect(u!.owner, `${c.name}: ${k}`).toMatch(/^[1-9]\d*$/);
    expect(env[k.slice(0, -suffix.length)], `${c.name}: ${k.slice(0, -suffix.length)} is also a variable`).toBeUndefined();
  }
  if (names.length > 0) expect(c.secretPaths.some((p) => p.startsWith("uploads")), c.name).toBe(true);
  return names.map((k) => k.slice(0, -suffix.length));
}

describe("secrets as files on the Docker target", { timeout: 300_000 }, () => {
  it("dev (local images, live trading keys): no container variable holds a credential; services, PostgreSQL, Redis, ClickHouse, Weaviate read files", async () => {
    const keys = { binanceApiKey: "K7".repeat(32), binanceSecretKey: "S9".repeat(32) };
    const run = await runProgram("dev", { tradingMode: "live", marketDataSource: "binance" }, keys);
    expect(leaks(run, Object.values(keys))).toEqual([]);

    const byName = new Map(byType(run, CONTAINER).map((c) => [c.name, c]));
    expect(checkFiles(byName.get("user-management-container")!, "_FILE")).toEqual(expect.arrayContaining(["JWT_SECRET", "POSTGRES_URL"]));
    expect(checkFiles(byName.get("trading-engine-container")!, "_FILE")).toEqual(expect.arrayContaining(["BINANCE_API_KEY", "BINANCE_SECRET_KEY"]));
    expect(checkFiles(byName.get("postgres-container")!, "_FILE")).toEqual(["POSTGRES_PASSWORD"]);
    expect(checkFiles(byName.get("dragonfly-container")!, "_FILE").sort()).toEqual(["REDISCLI_AUTH", "REDIS_PASSWORD"]);
    expect(checkFiles(byName.get("clickhouse-container")!, "_FILE")).toEqual(["CLICKHOUSE_PASSWORD"]);
    expect(checkFiles(byName.get("weaviate-container")!, "_FILE")).toEqual(["AUTHENTICATION_APIKEY_ALLOWED_KEYS"]);
    // The services' secret files belong to the services' user; their variables, holding none, are no secret in the state.
    expect(uploadsOf(byName.get("user-management-container")!).find((u) => u.file === "/run/secrets/jwt_secret")?.owner).toBe("10001");
    expect(byName.get("user-management-container")!.secretPaths).not.toContain("envs");

    // Every variable a service container gets as a file is one its schema marks secret (else the kit would refuse it at start).
    const schemas: ConfigSchema = Object.assign({}, ...Object.values(datastoreEnv));
    for (const [name, load] of Object.entries(registry)) Object.assign(schemas, commonEnv(findService(name)!), (await load()).config ?? {});
    const services = byType(run, CONTAINER).filter((c) => c.inputs.user === "10001:10001");
    expect(services.length).toBeGreaterThan(10);
    const notSecret = services.flatMap((c) => checkFiles(c, "_FILE").filter((n) => !isSecret(schemas[n])).map((n) => `${c.name}: ${n}`));
    expect(notSecret).toEqual([]);
  });

  it("upstream images: Grafana reads __FILE, the official PostgreSQL image _FILE; what cannot read a file stays a variable", async () => {
    const run = await runProgram("dev", { imageSource: "upstream", grafanaEnabled: "true", arangodbEnabled: "true", redisEnabled: "true" });
    const byName = new Map(byType(run, CONTAINER).map((c) => [c.name, c]));
    // The vendors' ClickHouse and Weaviate images read their credential from a variable only (README
    // "Credentials on Docker are files" says why each stays one). Before session 45 also Dragonfly's
    // DFLY_requirepass and REDISCLI_AUTH, the official Redis's REDISCLI_AUTH and ArangoDB's ARANGO_ROOT_PASSWORD.
    expect(leaks(run, []).sort()).toEqual([
      "clickhouse-container: CLICKHOUSE_PASSWORD",
      "weaviate-container: AUTHENTICATION_APIKEY_ALLOWED_KEYS",
    ]);
    expect(checkFiles(byName.get("grafana-container")!, "__FILE")).toEqual(["GF_SECURITY_ADMIN_PASSWORD"]);
    expect(checkFiles(byName.get("postgres-container")!, "_FILE")).toEqual(["POSTGRES_PASSWORD"]);
    expect(checkFiles(byName.get("user-management-container")!, "_FILE")).toEqual(expect.arrayContaining(["JWT_SECRET"]));
    // ArangoDB's entrypoint reads ARANGO_ROOT_PASSWORD_FILE; the health checks of Dragonfly and the official
    // Redis read REDISCLI_AUTH_FILE (components/data/definitions.ts), whatever the image.
    expect(checkFiles(byName.get("arangodb-container")!, "_FILE")).toEqual(["ARANGO_ROOT_PASSWORD"]);
    expect(checkFiles(byName.get("dragonfly-container")!, "_FILE")).toEqual(["REDISCLI_AUTH"]);
    expect(checkFiles(byName.get("redis-container")!, "_FILE")).toEqual(["REDISCLI_AUTH"]);
  });

  it("Dragonfly reads its password from a secret flag file, on no command line; the official Redis from its secret redis.conf", async () => {
    const run = await runProgram("dev", { imageSource: "upstream", redisEnabled: "true" });
    const byName = new Map(byType(run, CONTAINER).map((c) => [c.name, c]));
    const generated = /Mock[A-Za-z0-9]{6,}/;
    for (const name of ["dragonfly-container", "redis-container"]) {
      const c = byName.get(name)!;
      const words = [...((c.inputs.command as string[] | undefined) ?? []), ...((c.inputs.entrypoints as string[] | undefined) ?? [])];
      expect(words.filter((w) => generated.test(w)), `${name}: a credential on its command line`).toEqual([]);
      expect(JSON.stringify(c.inputs.healthcheck ?? {}), `${name}: its health check`).not.toMatch(generated);
    }
    const df = byName.get("dragonfly-container")!;
    expect(df.inputs.command).toContain("--flagfile=/etc/dragonfly/secret.flags");
    const flags = uploadsOf(df).find((u) => u.file === "/etc/dragonfly/secret.flags");
    expect(flags).toMatchObject({ permissions: "0400", owner: "999" });
    expect(flags!.content).toMatch(/^--requirepass=Mock[A-Za-z0-9]+\n$/);
    expect(df.secretPaths.some((p) => p.startsWith("uploads")), "the flag file is a secret in the state").toBe(true);
  });
});

describe("dockerSecretsAsFiles", () => {
  const spec = (over: Partial<WorkloadSpec>): WorkloadSpec => ({
    name: "w", role: "service", kind: "stateless", image: "i", env: {}, secretEnv: { API_TOKEN: "t0k3n" }, ports: [], volumes: [], files: [],
    resources: { cpu: "1", memory: "1Gi" }, replicas: 1, security: { runAsUser: 10001, readOnlyRootFilesystem: true, scratchDirs: [] }, connectsTo: [], acceptsFrom: [], ...over,
  });

  it("leaves a workload whose image reads no file as it is", () => {
    const s = spec({});
    expect(dockerSecretsAsFiles(s)).toBe(s);
  });

  it("refuses a spec that sets the path variable itself or uses the file's path", () => {
    expect(() => dockerSecretsAsFiles(spec({ secretEnvFiles: "_FILE", env: { API_TOKEN_FILE: "/x" } }))).toThrow(/API_TOKEN_FILE would name the file of the secret variable API_TOKEN/);
    expect(() => dockerSecretsAsFiles(spec({ secretEnvFiles: "_FILE", files: [{ path: "/run/secrets/api_token", content: "x" }] }))).toThrow(/\/run\/secrets\/api_token, which another file/);
    expect(() => dockerSecretsAsFiles(spec({ secretEnvFiles: "_FILE", secretEnv: { A: "1", a: "2" } }))).toThrow(/another file/);
  });
});
