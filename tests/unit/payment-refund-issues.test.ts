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
});
