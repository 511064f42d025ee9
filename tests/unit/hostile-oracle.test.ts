/**
 * tests/hostile/oracle.ts judges every answer of the hostile suites for leaks. A native library's
 * source location (onnxruntime's "/onnxruntime_src/onnxruntime/core/graph/model.cc:191
 * onnxruntime::Model::Model(...)", which ml-predictor answered until ff65e29) was not one of them;
 * normal bodies with .cc domains, host:port values, IPv6 addresses and C++-looking names stay clean.
 */
import { describe, expect, it } from "vitest";
import { isOverloadAnswer, judge, leaksIn } from "../hostile/oracle";

describe("hostile oracle: native source locations", () => {
  it("flags a C/C++ file with a line number, a path to one, and a qualified C++ signature", () => {
    const onnx = "/onnxruntime_src/onnxruntime/core/graph/model.cc:191 onnxruntime::Model::Model(onnx::ModelProto&&, ...) Missing opset";
    expect(leaksIn(JSON.stringify({ error: { code: "MODEL_UNLOADABLE", message: onnx } }))).toEqual(["native source location", "native source path", "C++ signature"]);
    for (const body of ["model.cc:191", "at graph.cpp(88)", "tensor.h:12 failed", "x.c:5", '{"m":"onnx-ml.pb.cc:12 x"}', "see (graph.cpp(1))"]) expect(leaksIn(body), body).toContain("native source location");
    expect(leaksIn("see /onnxruntime_src/onnxruntime/core/graph/model.cc")).toEqual(["native source path"]);
    expect(leaksIn("onnxruntime::Model::Model(x)")).toEqual(["C++ signature"]);
  });

  it("leaves normal bodies alone", () => {
    for (const body of [
      '{"url":"https://hooks.example.cc:8443/h"}', '{"url":"https://a.cc:8443"}', '{"url":"https://hooks.example.cc/h"}', '{"host":"a.cc:443"}', '{"address":"10.0.0.1:8080"}',
      '{"ipv6":"fe80::1"}', '{"name":"std::vector"}', '{"version":"1.2.3"}', '{"msg":"a.b.c:10"}', '{"url":"https://x.example/a/b.h"}', '{"path":"/api/docs/index.html"}', '{"name":"Zoë Ørsted"}',
    ])
      expect(leaksIn(body), body).toEqual([]);
  });
});

describe("hostile oracle: internal names in error answers (session 52)", () => {
  const error = (message: string) => JSON.stringify({ error: { code: "X", message, requestId: "r" } });
  it("flags a service's catalog name, a datastore, a topic or a table in a 4xx or 5xx body", () => {
    for (const [message, name] of [
      ["order-management is unavailable", "order-management"], ["the orders cannot be read (Order-Management answered 503)", "order-management"], ["Postgres is down", "postgres"],
      ["ClickHouse is not configured", "clickhouse"], ["published to trading.orders", "trading.orders"], ["no row in pay_intents", "pay_intents"], ["onnxruntime rejected it", "onnxruntime"],
    ]) {
      expect(judge(400, error(message), "application/json").problems, message).toEqual([`internal name ${name}`]);
    }
    expect(judge(502, error("api-gateway: user-management did not answer"), "application/json").problems).toEqual(["status 502", "internal name api-gateway", "internal name user-management"]);
  });

  it("leaves public routes, ordinary words and successful answers alone", () => {
    for (const message of ["the service at /api/orders/ did not answer", "no strategy x: GET /api/ai-chains/ lists them", "orders of this user", "a market order", "the payment service answered 503", "postgresql-like"]) {
      expect(judge(404, error(message), "application/json").problems, message).toEqual([]);
    }
    expect(judge(200, '{"datastores":{"postgres":{"status":"ok"}}}', "application/json").problems).toEqual([]);
    // A public value of a route (a backtest's data.source), quoted: the allowed values listed, the client's echoed.
    expect(judge(400, error('Invalid body: data.source must be one of "synthetic", "clickhouse", "replay"'), "application/json").problems).toEqual([]);
    expect(judge(400, error("data.source 'clickhouse' is not available in this deployment"), "application/json").problems).toEqual([]);
    expect(judge(400, error("ClickHouse is not configured"), "application/json").problems).toEqual(["internal name clickhouse"]);
    expect(judge(400, error('"postgres" is down'), "application/json").problems).toEqual(["internal name postgres"]);
  });
});

describe("hostile oracle: the overload answer a client retries (session 56)", () => {
  it("is only order-management's 503 SUBMIT_DEADLINE_PASSED; any other 5xx is judged as it comes", () => {
    const body = (code: string) => JSON.stringify({ error: { code, message: "m" } });
    expect(isOverloadAnswer(503, body("SUBMIT_DEADLINE_PASSED"))).toBe(true);
    expect(isOverloadAnswer(500, body("SUBMIT_DEADLINE_PASSED"))).toBe(false);
    expect(isOverloadAnswer(503, body("DATASTORE_UNAVAILABLE"))).toBe(false);
    expect(isOverloadAnswer(503, "SUBMIT_DEADLINE_PASSED")).toBe(false);
    expect(judge(503, body("SUBMIT_DEADLINE_PASSED"), "application/json").problems).toEqual(["status 503"]);
  });
});
