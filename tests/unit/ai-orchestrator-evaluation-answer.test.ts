/**
 * ai-orchestrator's evaluation answers (evaluation-answer.ts), pure: what an ended evaluation records
 * for the callers waiting in other replicas is what its callers in its own replica were answered,
 * status, code, message, field and retry-after; an error that is not an HttpError (its callers got
 * the kit's answer, which names nothing) is told as little, never its message.
 */
import { describe, expect, it } from "vitest";
import { HttpError, unavailable } from "../../services/src/kit";
import { DECIDED, failedAnswer } from "../../services/src/services/ai-orchestrator/evaluation-answer";

describe("an evaluation's recorded answer", () => {
  it("an HttpError as it was answered: status, code, message, field, headers", () => {
    expect(failedAnswer(unavailable("EVALUATION_FAILED", "the evaluation failed (INTERNAL_ERROR; 1 in a row)", 7))).toEqual({
      error: { statusCode: 503, code: "EVALUATION_FAILED", message: "the evaluation failed (INTERNAL_ERROR; 1 in a row)", field: undefined, headers: { "retry-after": "7" } },
    });
    expect(failedAnswer(new HttpError(409, "STRATEGY_DELETED", "gone", "id"))).toMatchObject({ error: { statusCode: 409, code: "STRATEGY_DELETED", field: "id" } });
    // JSON (the jsonb column) keeps what a caller needs.
    const stored = JSON.parse(JSON.stringify(failedAnswer(unavailable("ORDER_OUTCOME_PENDING", "later", 10))));
    expect(stored).toEqual({ error: { statusCode: 503, code: "ORDER_OUTCOME_PENDING", message: "later", headers: { "retry-after": "10" } } });
    expect(JSON.parse(JSON.stringify(DECIDED))).toEqual({ decided: true });
  });

  it("a datastore outage is DATASTORE_UNAVAILABLE; any other error a 503 naming nothing of it", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.7:5432 password=hunter2"), { code: "ECONNREFUSED" });
    expect(failedAnswer(refused)).toMatchObject({ error: { statusCode: 503, code: "DATASTORE_UNAVAILABLE" } });
    const other = failedAnswer(new TypeError("Cannot read properties of null (reading 'map') at /srv/secret/path.ts"));
    expect(other).toMatchObject({ error: { statusCode: 503, code: "EVALUATION_FAILED", headers: { "retry-after": "1" } } });
    for (const a of [failedAnswer(refused), other]) expect(JSON.stringify(a)).not.toMatch(/hunter2|10\.0\.0\.7|secret|null \(reading/);
  });
});
