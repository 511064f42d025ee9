/**
 * Session 50: service variables the stack bounds but a hand-set environment did not, each refused at
 * start naming the variable: NOTIFY_WEBHOOK_PORTS naming a datastore's or cluster service's port,
 * SMTP_PORT another protocol's (one rule with the stack's smtpPort), CH_BATCH_BYTES and
 * CH_MAX_BATCH_BYTES beyond what one fetch carries. No server: loadConfig judges the schema.
 */
import { describe, expect, it } from "vitest";
import { commonEnv, datastoreEnv, type ConfigSchema, type TSchema } from "../../services/src/kit";
import { FETCH_BAD_PORTS, findService, INTERNAL_SERVICE_PORTS, smtpPortProblem, WEBHOOK_REFUSED_PORTS } from "../../services/src/catalog";
import { registry } from "../../services/src/registry";
import { configProblems } from "../helpers/config-problems";

async function schemaOf(service: keyof typeof registry): Promise<ConfigSchema> {
  return (await registry[service]()).config!;
}

const problems = configProblems;

describe("NOTIFY_WEBHOOK_PORTS", () => {
  it("refuses a datastore's or cluster service's port, naming the variable (before: 5432, 2379, 10250 were taken)", async () => {
    const schema = await schemaOf("notification-service");
    for (const port of ["5432", "6379", "9092", "2379", "6443", "10250", "9090", "3000", "8080", "27017"]) {
      expect(problems("notification-service", schema, { NOTIFY_WEBHOOK_PORTS: `443,${port}` }), port).toEqual([
        expect.stringContaining(`NOTIFY_WEBHOOK_PORTS has an invalid item "${port}" (expected a TCP port, 1 to 65535, none of the Fetch standard's bad ports (SSH, SMTP, IMAP, ...) nor a datastore's or cluster service's`),
      ]);
    }
    expect(problems("notification-service", schema, { NOTIFY_WEBHOOK_PORTS: "443,8443,9443" })).toEqual([]);
  });

  it("refuses exactly the ports the stack's notifyWebhookPorts refuses: one list", () => {
    expect(WEBHOOK_REFUSED_PORTS).toEqual([...FETCH_BAD_PORTS, ...Object.keys(INTERNAL_SERVICE_PORTS).map(Number)]);
    for (const p of [443, 8443, 9443]) expect(WEBHOOK_REFUSED_PORTS, String(p)).not.toContain(p);
  });
});

describe("SMTP_PORT and smtpPort: one rule", () => {
  it("refuses another protocol's port among the Fetch standard's bad ports, keeps SMTP's own and any other", () => {
    for (const p of [22, 53, 143, 993, 6667]) expect(smtpPortProblem(p), String(p)).toMatch(new RegExp(`^${p} is the port of a service that speaks no SMTP`));
    for (const p of [25, 465, 587, 2525, 1025]) expect(smtpPortProblem(p), String(p)).toBeUndefined();
  });

  it("refuses a datastore's, the cluster's, monitoring's and the edge's port (session 65: each was opened for egress)", () => {
    for (const p of [...Object.keys(INTERNAL_SERVICE_PORTS).map(Number), 80, 443]) expect(smtpPortProblem(p), String(p)).toMatch(new RegExp(`^${p} is the port of .+, which speaks no SMTP`));
    expect(smtpPortProblem(5432)).toMatch(/^5432 is the port of PostgreSQL, which speaks no SMTP/);
  });
});

describe("CH_BATCH_BYTES and CH_MAX_BATCH_BYTES", () => {
  it("are held to 16 MiB, naming the variable (before: no upper bound; a fetch asks twice CH_MAX_BATCH_BYTES)", async () => {
    const schema = await schemaOf("data-bridge");
    expect(problems("data-bridge", schema, { CH_BATCH_BYTES: String(16 * 1_048_576 + 1), CH_MAX_BATCH_BYTES: "1073741824" })).toEqual([
      'CH_BATCH_BYTES must be <= 16777216 (got "16777217")',
      'CH_MAX_BATCH_BYTES must be <= 16777216 (got "1073741824")',
    ]);
    expect(problems("data-bridge", schema, { CH_BATCH_BYTES: "16777216", CH_MAX_BATCH_BYTES: "16777216" })).toEqual([]);
  });
});

describe("numbers whose 0 or negative value means nothing (session 52)", () => {
  /** Every variable of every service (the kit's common ones, its own, its datastores'), by name. */
  async function everyVariable(): Promise<[string, string, TSchema][]> {
    const out: [string, string, TSchema][] = [];
    for (const [service, load] of Object.entries(registry)) {
      const def = findService(service)!;
      const stores = [...def.requires, ...def.optional].map((d) => datastoreEnv[d as keyof typeof datastoreEnv]);
      const schema: ConfigSchema = Object.assign({ ...commonEnv(def), ...((await load()).config ?? {}) }, ...stores);
      for (const [name, s] of Object.entries(schema)) out.push([service, name, s]);
    }
    return out;
  }
  const numeric = (s: TSchema) => s.type === "integer" || s.type === "number";

  it("PORT=0 is refused naming PORT (before: taken, and the service listened on a port the kernel picked, which no peer, probe or route reaches)", () => {
    const common = commonEnv(findService("api-gateway")!);
    expect(problems("api-gateway", common, { PORT: "0" })).toEqual(['PORT must be >= 1 (got "0")']);
    expect(problems("api-gateway", common, { PORT: "-1" })).toEqual(['PORT must be >= 1 (got "-1")']);
    expect(problems("api-gateway", common, { PORT: "1" })).toEqual([]);
  });

  it("every port variable of every service starts at 1, and no numeric variable takes a negative value", async () => {
    const vars = await everyVariable();
    const ports = vars.filter(([, name, s]) => /(^|_)PORT$/.test(name) && numeric(s));
    expect(ports.length).toBeGreaterThan(3);
    for (const [service, name, s] of ports) expect(s.minimum, `${service} ${name}`).toBe(1);
    const unbounded = vars.filter(([, , s]) => numeric(s) && !(typeof s.minimum === "number" && s.minimum >= 0) && !(typeof s.exclusiveMinimum === "number" && s.exclusiveMinimum >= 0));
    expect(unbounded.map(([service, name]) => `${service} ${name}`)).toEqual([]);
  });
});
