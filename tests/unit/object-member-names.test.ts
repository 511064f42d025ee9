/**
 * Names every JavaScript object answers (`constructor`, `toString`, `__proto__`, `hasOwnProperty`)
 * arriving where a name is looked up in a table: they are unknown names like any other, never the
 * object's own members (which would be taken for an entry, then called or iterated, and throw).
 */
import { describe, expect, it } from "vitest";
import { ParameterError, resolveParameters, strategies } from "../../services/src/backtest";
import { fromBillingEvent } from "../../services/src/services/notification-service/domain";

const MEMBERS = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];

describe("names every object answers", () => {
    it.each(MEMBERS)("a billing event of type %s gets no notice (no text for it), and does not throw", (type) => {
        expect(fromBillingEvent({ eventId: "e1", type, userId: "u1", subscriptionId: "s1", planId: "pro", status: "active", currency: "usd", mrr: 0, ts: 1 } as never)).toBeNull();
    });

    it.each(MEMBERS)("a strategy parameter named %s is unknown, named in the error", (name) => {
        const def = strategies.get("sma_crossover") ?? strategies.get(strategies.names()[0])!;
        const given = JSON.parse(`{${JSON.stringify(name)}: 3}`) as Record<string, unknown>;
        expect(() => resolveParameters(def, given)).toThrow(ParameterError);
        try {
            resolveParameters(def, given);
        } catch (e) {
            expect((e as ParameterError).field).toBe(`parameters.${name}`);
        }
    });
});
