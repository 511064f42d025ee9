/**
 * Refund issues (pay_refund_issues) had no retention and no way for an operator to close one: only the
 * service resolved one (its condition over), and one it went on seeing (a succeeded refund the
 * processor's list never returns again, re-checked for 30 days) could not be closed at all. An admin
 * now closes an open issue with a note (POST /refund-issues/:id/resolve: who and how they signed in
 * recorded, 404 for no such issue, 409 when resolved already), and that close stands when the issue is
 * seen again (counted, not reopened, not logged again). Resolved issues are deleted
 * PAYMENT_REFUND_ISSUE_RETENTION_DAYS after they were resolved (the kit's RECORD_RETENTION_DAYS bounds:
 * 7 years by default, at least 5), open ones never (migration 0486).
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratedKitPostgres } from "../helpers/schemas";
import type { PostgresClient } from "../../services/src/kit";
import { RefundIssues } from "../../services/src/services/payment-service/refund-issues";
import { FakeCardProcessor, type FakeRefund } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { admin, refundIssuesCounted, usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
const replicas = usePaymentReplicas(fake, { env: {}, resetFake: () => (fake.refundStatus = "succeeded") });
const { bases, payment, refund, trader } = replicas;
let client: PostgresClient;
beforeAll(async () => {
  // (the replicas' database: a kit client of it, as payment-service has)
  client = await migratedKitPostgres(replicas.pool.options.connectionString!, { warn() {}, info() {}, error() {}, debug() {} } as never, 2);
}, 120_000);
afterAll(async () => {
  await client?.close();
});

const q = (sql: string, args: unknown[]) => replicas.pool.query(sql, args);
const issuesOf = async (intentId: string, status = "open") =>
  ((await http("GET", `${bases[1]}/refund-issues?status=${status}`, { headers: admin })).body.issues as Record<string, unknown>[]).filter((i) => i.intentId === intentId);
const resolve = (id: string, body: unknown, headers: Record<string, string> = admin) => http("POST", `${bases[0]}/refund-issues/${id}/resolve`, { body, headers });
const metric = (kind: string) => refundIssuesCounted(bases[0], kind);
/** A succeeded refund of a new payment the processor's list no longer returns, re-checked once: a `not_found` issue. Answers it and a re-check. */
async function notFoundIssue() {
  const p = await payment(1_000);
  const refundId: string = (await refund(p.id, `r-${randomUUID()}`, 1_000)).body.refund.id;
  const atProcessor: FakeRefund = fake.refundOf(refundId);
  const hide = () => void fake.refunds.splice(fake.refunds.indexOf(atProcessor), 1);
  hide();
  const recheck = async () => {
    await q("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refundId]);
    return (await replicas.reconcile()).body.rechecked.filter((x: { refundId: string }) => x.refundId === refundId);
  };
  expect(await recheck()).toEqual([{ refundId, intentId: p.id, outcome: "not_found" }]);
  const [issue] = await issuesOf(p.id);
  expect(issue).toMatchObject({ id: expect.any(String), kind: "not_found", refundId, resolvedAt: null, resolvedBy: null, resolutionNote: null });
  return { p, refundId, issue, recheck, hide, restore: () => void fake.refunds.push(atProcessor) };
}

describe("an operator closes a refund issue", () => {
  it("with a note: recorded with who closed it; closed for good, even when seen again; a second close is 409", async () => {
    const { p, issue, recheck } = await notFoundIssue();
    const before = await metric("not_found");
    const note = "checked on the processor's dashboard: refunded on 3 Dec, its list lags";
    const closed = await resolve(issue.id as string, { note });
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    expect(closed.body).toMatchObject({ id: issue.id, kind: "not_found", resolvedAt: expect.any(String), resolvedBy: admin["x-user-id"], resolvedAuthMethod: "jwt", resolutionNote: note });
    expect(await issuesOf(p.id)).toEqual([]);
    expect(await issuesOf(p.id, "all")).toEqual([expect.objectContaining({ id: issue.id, resolvedBy: admin["x-user-id"], resolutionNote: note })]);
    // Seen again by the next re-check: counted, still closed as the operator left it, not logged nor counted anew.
    expect(await recheck()).toEqual([expect.objectContaining({ outcome: "not_found" })]);
    expect(await issuesOf(p.id, "all")).toEqual([expect.objectContaining({ seen: 2, resolvedAt: closed.body.resolvedAt, resolutionNote: note })]);
    expect(await issuesOf(p.id)).toEqual([]);
    expect((await metric("not_found")) - before).toBe(0);
    // Closed already: 409 naming the id, the first close kept.
    const again = await resolve(issue.id as string, { note: "again" });
    expect([again.status, again.body.error?.code, again.body.error?.field]).toEqual([409, "ISSUE_RESOLVED", "id"]);
    expect((await issuesOf(p.id, "all"))[0].resolutionNote).toBe(note);
  }, 60_000);

  it("one the service resolved is 409 too; and the service reopens its own when it is seen again", async () => {
    const { p, issue, recheck, hide, restore } = await notFoundIssue();
    restore();
    expect(await recheck()).toEqual([expect.objectContaining({ outcome: "unchanged" })]);
    expect(await issuesOf(p.id, "all")).toEqual([expect.objectContaining({ id: issue.id, resolvedAt: expect.any(String), resolvedBy: null })]);
    expect((await resolve(issue.id as string, { note: "looked at it" })).body.error?.code).toBe("ISSUE_RESOLVED");
    hide();
    expect(await recheck()).toEqual([expect.objectContaining({ outcome: "not_found" })]);
    expect(await issuesOf(p.id)).toEqual([expect.objectContaining({ id: issue.id, resolvedAt: null, seen: 2 })]);
  }, 60_000);

  it("is an admin's; the id and the note are checked (4xx naming the field); no such issue is 404", async () => {
    const { issue } = await notFoundIssue();
    const id = issue.id as string;
    expect((await resolve(id, { note: "mine now" }, trader)).status).toBe(403);
    const cases: [string, unknown, number, string | undefined][] = [
      ["not-a-uuid", { note: "fine" }, 400, "id"],
      [id, {}, 400, "note"],
      [id, { note: "" }, 400, "note"],
      [id, { note: "ok" }, 400, "note"],
      [id, { note: "line one\nline two" }, 400, "note"],
      [id, { note: "\u202Egnp.exe" }, 400, "note"],
      [id, { note: "x".repeat(1_001) }, 400, "note"],
      [id, { note: "fine", by: "someone else" }, 400, undefined],
      [randomUUID(), { note: "no such issue" }, 404, undefined],
    ];
    for (const [target, body, status, field] of cases) {
      const r = await resolve(target, body);
      expect([r.status, ...(field ? [r.body.error?.field] : [])], `${target} ${JSON.stringify(body).slice(0, 60)}`).toEqual([status, ...(field ? [field] : [])]);
    }
    // None of them closed it.
    expect((await http("GET", `${bases[0]}/refund-issues`, { headers: admin })).body.issues).toEqual(expect.arrayContaining([expect.objectContaining({ id, resolvedAt: null })]));
  }, 60_000);
});

describe("refund issue retention", () => {
  it("deletes issues resolved longer ago than the retention, a bounded batch a pass; keeps younger and open ones, however old", async () => {
    const made: Record<string, string> = {};
    for (const name of ["closedOld1", "closedOld2", "closedEdge", "openOld"]) made[name] = ((await notFoundIssue()).issue.id as string);
    const at = (name: string, sql: string) => q(`UPDATE pay_refund_issues SET ${sql} WHERE issue_id = $1`, [made[name]]);
    await at("closedOld1", "resolved_at = now() - interval '9 years', first_seen_at = now() - interval '9 years'");
    await at("closedOld2", "resolved_at = now() - interval '2558 days'");
    await at("closedEdge", "resolved_at = now() - interval '2550 days'");
    await at("openOld", "first_seen_at = now() - interval '20 years', last_seen_at = now() - interval '20 years'");
    const issues = new RefundIssues(client, { info() {}, error() {}, warn() {} } as never);
    const left = async () => (await q("SELECT issue_id FROM pay_refund_issues WHERE issue_id = ANY($1::uuid[])", [Object.values(made)])).rows.map((r) => Object.keys(made).find((k) => made[k] === r.issue_id)).sort();
    expect(await issues.deleteResolvedPastRetention(2_557, 1)).toBe(1);
    expect(await left()).toEqual(["closedEdge", "closedOld2", "openOld"]);
    while ((await issues.deleteResolvedPastRetention(2_557, 1)) > 0);
    expect(await left()).toEqual(["closedEdge", "openOld"]);
  }, 120_000);
});
