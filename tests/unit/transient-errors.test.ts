import { describe, expect, it } from "vitest";
import { isTransientError } from "../../services/src/kit/transient-errors";

describe("datastore outages answer 503, not 500", () => {
  it.each([
    ["pg pool connect timeout", new Error("timeout exceeded when trying to connect")],
    ["pg connection ended", new Error("Connection terminated unexpectedly")],
    ["refused", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })],
    ["closed keep-alive socket", new Error("socket hang up")],
    ["ioredis closed", new Error("Connection is closed.")],
    ["postgres starting up", Object.assign(new Error("the database system is starting up"), { code: "57P03" })],
    ["kafkajs", Object.assign(new Error("Connection timeout"), { name: "KafkaJSConnectionError" })],
  ])("%s is an outage", (_what, err) => expect(isTransientError(err)).toBe(true));

  it.each([
    ["a bug", new TypeError("Cannot read properties of undefined (reading 'x')")],
    ["a constraint", Object.assign(new Error('violates check constraint "positive"'), { code: "23514" })],
    ["not an error", "boom"],
    ["null", null],
  ])("%s is not", (_what, err) => expect(isTransientError(err)).toBe(false));
});
