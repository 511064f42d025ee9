/**
 * payment-service's refund issues (refund-issues.ts): the first sighting of an issue is logged at
 * error level once, with ids, amount and status only, and counted once; later sightings (replays, the
 * next event, the next re-check) are not logged again. The insert's `fresh` answer decides it (the
 * database part is tests/business/payment-refund-issues.test.ts).
 */
import { describe, expect, it } from "vitest";
import { createLogger, type PostgresClient } from "../../services/src/kit";
import { RefundIssues } from "../../services/src/services/payment-service/refund-issues";

describe("RefundIssues.record", () => {
  it("logs at error level and counts the first sighting only, naming ids, amount and status", async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger("payment-service", "info", { write: (s: string) => void lines.push(JSON.parse(s)) });
    const incs: unknown[] = [];
    const counted = { inc: (labels: unknown) => void incs.push(labels) };
    const issues = new RefundIssues(undefined as unknown as PostgresClient, log, counted as never);
    const sql: unknown[][] = [];
    const answers = [true, false, false];
    const c = { query: async (_text: string, args: unknown[]) => (sql.push(args), { rows: [{ fresh: answers.shift() }] }) };
    const issue = { kind: "exceeds_payment", intentId: "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", refundId: null, processorRefundId: "re_1", amount: 3_000n, processorStatus: "succeeded" } as const;
    expect([await issues.record(c as never, issue), await issues.record(c as never, issue), await issues.record(c as never, issue)]).toEqual([true, false, false]);
    // One key for the refund (made at the processor: by its processor id), every time.
    expect(new Set(sql.map((a) => a[0]))).toEqual(new Set(["exceeds_payment:processor/re_1"]));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, kind: "exceeds_payment", intentId: issue.intentId, refundId: null, processorRefundId: "re_1", amount: 3_000, processorStatus: "succeeded" });
    // Its own fields are these only (beside pino's level, time, name, service, msg).
    const own = Object.keys(lines[0]).filter((k) => !["level", "time", "name", "service", "msg", "pid", "hostname"].includes(k));
    expect(own.sort()).toEqual(["amount", "intentId", "kind", "processorRefundId", "processorStatus", "refundId"]);
    expect(incs).toEqual([{ kind: "exceeds_payment" }]);
  });

  it("a mismatch names the processor's amount and currency too (an amount that is none as null, the currency cut at 16 characters)", async () => {
    const lines: Record<string, unknown>[] = [];
    const issues = new RefundIssues(undefined as unknown as PostgresClient, createLogger("payment-service", "info", { write: (s: string) => void lines.push(JSON.parse(s)) }));
    const sql: unknown[][] = [];
    const c = { query: async (_text: string, args: unknown[]) => (sql.push(args), { rows: [{ fresh: true }] }) };
    const base = { intentId: "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", refundId: "0c8f6a52-9d47-4f3e-b2a1-7e6d5c4b3a29", processorRefundId: "re_1", amount: 3_000n, processorStatus: "succeeded" };
    await issues.record(c as never, { ...base, kind: "amount_mismatch", processorAmount: 2_500n, processorCurrency: "usd" });
    await issues.record(c as never, { ...base, kind: "currency_mismatch", processorAmount: -1n, processorCurrency: "x".repeat(5_000) });
    expect(lines.map((l) => [l.kind, l.processorAmount, l.processorCurrency])).toEqual([["amount_mismatch", 2_500, "usd"], ["currency_mismatch", null, "x".repeat(16)]]);
    expect(sql.map((a) => a.slice(7, 9))).toEqual([["2500", "usd"], [null, "x".repeat(16)]]);
  });
});

describe("RefundIssues.record's message of a mismatch", () => {
  it("says `our refund` of one of ours, and a refund made at the processor (not ours) of one made on its dashboard", async () => {
    const lines: Record<string, unknown>[] = [];
    const issues = new RefundIssues(undefined as unknown as PostgresClient, createLogger("payment-service", "info", { write: (s: string) => void lines.push(JSON.parse(s)) }));
    const c = { query: async () => ({ rows: [{ fresh: true }] }) };
    const base = { intentId: "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e", processorRefundId: "re_1", amount: 3_000n, processorStatus: "succeeded", processorAmount: 2_500n, processorCurrency: "eur" };
    const ours = "0c8f6a52-9d47-4f3e-b2a1-7e6d5c4b3a29";
    for (const kind of ["amount_mismatch", "currency_mismatch"] as const) {
      await issues.record(c as never, { ...base, kind, refundId: ours });
      await issues.record(c as never, { ...base, kind, refundId: null });
    }
    const msgs = lines.map((l) => String(l.msg));
    expect(msgs.filter((m) => m.includes("our refund"))).toHaveLength(2);
    expect(lines.filter((l) => l.refundId === null).every((l) => String(l.msg).includes("not one of ours") && !String(l.msg).includes("our refund"))).toBe(true);
    expect(lines.filter((l) => l.refundId === ours).every((l) => String(l.msg).includes("our refund"))).toBe(true);
  });
});

describe("RefundIssues.close", () => {
  it("logs who closed it, never the note (free text)", async () => {
    const lines: Record<string, unknown>[] = [];
    const row = { issue_id: "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b", kind: "not_found", intent_id: "i", refund_id: "r", processor_refund_id: null, amount: "10", processor_status: null, processor_amount: null, processor_currency: null, first_seen_at: new Date(), last_seen_at: new Date(), seen: 1, resolved_at: new Date(), resolved_by: "u", resolved_auth_method: "jwt", resolution_note: "called the bank at 3 pm" };
    const pg = { query: async () => ({ rows: [row], rowCount: 1 }) };
    const issues = new RefundIssues(pg as never, createLogger("payment-service", "info", { write: (s: string) => void lines.push(JSON.parse(s)) }));
    expect(await issues.close(row.issue_id, { userId: "u", authMethod: "jwt" }, row.resolution_note)).toMatchObject({ id: row.issue_id, resolvedBy: "u", resolutionNote: row.resolution_note });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ issueId: row.issue_id, resolvedBy: "u", authMethod: "jwt" });
    expect(JSON.stringify(lines)).not.toContain("called the bank at 3 pm");
  });
});
