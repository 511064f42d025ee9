/**
 * Session 50: service variables the stack bounds but a hand-set environment did not, each refused at
 * start naming the variable: NOTIFY_WEBHOOK_PORTS naming a datastore's or cluster service's port,
 * SMTP_PORT another protocol's (one rule with the stack's smtpPort), CH_BATCH_BYTES and
 * CH_MAX_BATCH_BYTES beyond what one fetch carries. No server: loadConfig judges the schema.
 */
import { describe, expect, it } from "vitest";
import type { ConfigSchema } from "../../services/src/kit";
import { FETCH_BAD_PORTS, INTERNAL_SERVICE_PORTS, smtpPortProblem, WEBHOOK_REFUSED_PORTS } from "../../services/src/catalog";
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
