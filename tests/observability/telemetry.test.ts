/**
 * The pure parts of tracing and chain-debug: credential scrubbing of real SDK spans, error
 * fingerprints, OTLP JSON parsing and its errors, trace trees. The end to end path on real servers
 * is chain-debug.test.ts.
 */
import { describe, expect, it } from "vitest";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "../../services/node_modules/@opentelemetry/sdk-trace-base";
import { JsonTraceSerializer } from "../../services/node_modules/@opentelemetry/otlp-transformer";
import { REDACTED, ScrubbingExporter, scrubString, scrubUrl, tracesEndpoint } from "../../services/src/kit/telemetry";
import { fingerprintOf, normalizeMessage, topFrames } from "../../services/src/services/chain-debug/fingerprint";
import { OtlpError, parseOtlpTraces, type SpanRow } from "../../services/src/services/chain-debug/otlp";
import { buildTree, MAX_TREE_DEPTH, type SpanNode } from "../../services/src/services/chain-debug/tree";
import { cpuMs } from "../helpers/patience";

const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl";

describe("scrubbing", () => {
  it("masks credential-shaped text", () => {
    expect(scrubString(`Authorization: Bearer ${jwt}`)).not.toContain("eyJ");
    expect(scrubString(`connect postgresql://trading:s3cretPw@db:5432/x failed`)).toBe(`connect postgresql://${REDACTED}@db:5432/x failed`);
    expect(scrubString("key atk_abcdefghijklmnop and sk_test_abcdefghijkl and whsec_abcdefghijkl")).toBe(`key ${REDACTED} and ${REDACTED} and ${REDACTED}`);
    expect(scrubString('{"password":"hunter22"} token=abc123')).toBe(`{"password":"${REDACTED}"} token=${REDACTED}`);
    // the platform's own secrets are base64url: "-" and "_" anywhere, first character included
    for (const secret of ["-_abcdefghij_klmnop-qrstuvwxyzABCDEFGHIJKLMNOPQ", "abcdefgh-ijklmnop_qrstuvwxyz-ABCDEFGHIJKLMNOP_"]) {
      expect(scrubString(`hook whsec_${secret} sent`)).toBe(`hook ${REDACTED} sent`);
      expect(scrubString(`key atk_0123456789ab_${secret} used`)).toBe(`key ${REDACTED} used`);
    }
    expect(scrubUrl("/api/x?token=abc&page=2#f")).toBe(`/api/x?token=${REDACTED}&page=${REDACTED}#f`);
  });

  it("every exported span is scrubbed: attributes by name and by shape, exception events, SQL literals", async () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ScrubbingExporter(memory))] });
    const span = provider.getTracer("t").startSpan("GET /x?api_key=k123456789");
    span.setAttributes({
      "http.request.header.authorization": `Bearer ${jwt}`,
      "http.request.header.cookie": "session=abcdef",
      "http.request.header.accept": "application/json",
      "url.full": "http://svc/x?code=zzz&signature=yyy",
      "db.statement": "ALTER ROLE app PASSWORD 'p4ssw0rd!'",
      "app.note": `sent ${jwt}`,
    });
    span.recordException(new Error("login failed for postgresql://u:pw123456@h/db with password=hunter22"));
    span.end();
    await provider.forceFlush();
    const [s] = memory.getFinishedSpans();
    const text = JSON.stringify({ name: s.name, attributes: s.attributes, events: s.events });
    for (const secret of ["eyJ", "abcdef", "zzz", "yyy", "p4ssw0rd", "pw123456", "hunter22", "k123456789"]) expect(text).not.toContain(secret);
    expect(s.attributes["http.request.header.accept"]).toBe("application/json");
    expect(s.attributes["http.request.header.authorization"]).toBeUndefined();
    expect(s.attributes["db.statement"]).toBe("ALTER ROLE app PASSWORD '?'");
    expect(s.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("is off without an endpoint and rejects a malformed one", () => {
    expect(tracesEndpoint({})).toBeUndefined();
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://chain-debug:8030/x/" })).toBe("http://chain-debug:8030/x/v1/traces");
    expect(() => tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "not a url" })).toThrow();
    expect(() => tracesEndpoint({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "file:///etc/passwd" })).toThrow(/http/);
  });
});

describe("error fingerprints", () => {
  const stack = (line: number) => `TypeError: boom\n    at Billing.subscribe (/app/dist/services/billing-service/billing.js:${line}:7)\n    at async Object.<anonymous> (/app/dist/services/billing-service/routes.js:81:40)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n    at next (/app/node_modules/fastify/lib/hooks.js:1:1)`;
  it("ignores ids, numbers, quoted values and line numbers; keeps type, message shape and frames", () => {
    expect(normalizeMessage("order 3f2b1c9e-1111-4222-8333-444455556666 of user 'bob' failed after 12 tries")).toBe("order <uuid> of user <str> failed after <n> tries");
    expect(topFrames(stack(65))).toEqual(["Billing.subscribe (billing.js)", "async Object.<anonymous> (routes.js)"]);
    const a = fingerprintOf("TypeError", "invoice 3f2b1c9e-1111-4222-8333-444455556666 missing", stack(65));
    expect(fingerprintOf("TypeError", "invoice 9f2b1c9e-1111-4222-8333-444455556666 missing", stack(70))).toBe(a);
    expect(fingerprintOf("RangeError", "invoice 9f2b1c9e-1111-4222-8333-444455556666 missing", stack(65))).not.toBe(a);
    expect(fingerprintOf("TypeError", "plan missing", stack(65))).not.toBe(a);
    expect(fingerprintOf("TypeError", "invoice x missing", stack(65).replace("Billing.subscribe", "Billing.cancel"))).not.toBe(fingerprintOf("TypeError", "invoice x missing", stack(65)));
  });

  it("reads a stack in time linear in its length (a line of 'at ' and 16,000 spaces took half a second; a batch carries thousands)", () => {
    // The length OTLP parsing clips a string to, and lines shaped against the frame pattern's lazy groups.
    const lines = ["    at " + " ".repeat(16_000) + "x", "at " + " ".repeat(996) + "x", "at x" + ":1".repeat(498), "at " + " (".repeat(498)];
    // CPU time, not the clock: waiting for a core on a loaded machine is not the parser's (tests/helpers/patience.ts).
    const stacks = cpuMs(() => {
      for (const line of lines) for (let i = 0; i < 20; i++) fingerprintOf("Error", "m", `${line}\n`.repeat(Math.max(1, Math.floor(16_384 / (line.length + 1)))).slice(0, 16_384));
    });
    expect(stacks).toBeLessThan(2_000); // 9.8 s before; ~0.1 s on an idle host
    // A message's placeholders likewise: runs of letters, dots and signs were scanned to their end from each start (7.7 ms for 2,000 characters).
    const messages = cpuMs(() => {
      for (const m of ["a.".repeat(1_000), "a+".repeat(1_000), "a".repeat(2_000), "1.".repeat(1_000)]) for (let i = 0; i < 50; i++) normalizeMessage(m);
    });
    expect(messages).toBeLessThan(1_000); // 2.2 s before; ~0.06 s on an idle host
    expect(normalizeMessage("GET https://user@example.com/x failed for ops+alerts@example.co.uk and svc-1.internal")).toBe("GET <url> failed for <email> and svc-<n>.internal");
    // A frame padded with spaces is the same frame.
    expect(topFrames("Error: x\n  \t  at f (/app/a.js:1:2)   \n")).toEqual(["f (a.js)"]);
  });
});

describe("OTLP JSON", () => {
  it("parses what the SDK's own JSON serializer sends", async () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    const tracer = provider.getTracer("t");
    const parent = tracer.startSpan("POST /a", { kind: 1, attributes: { "http.response.status_code": 500, "http.request.id": "req-1" } });
    parent.recordException(new TypeError("Cannot read properties of undefined (reading 'x')"));
    parent.setStatus({ code: 2, message: "bad" });
    parent.end();
    await provider.forceFlush();
    const body = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(memory.getFinishedSpans())!).toString());
    const { spans, errors } = parseOtlpTraces(body);
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ trace_id: parent.spanContext().traceId, parent_span_id: "", name: "POST /a", kind: 2, status_code: 2, http_status: 500, request_id: "req-1" });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ type: "TypeError", event_index: 0 });
    expect(errors[0].service).toMatch(/^unknown_service/); // the SDK default without a service.name
  });

  it("names the field of malformed input", () => {
    const bad = (b: unknown) => {
      try {
        parseOtlpTraces(b);
      } catch (e) {
        return e instanceof OtlpError ? e.field : "other";
      }
      return "none";
    };
    expect(bad("x")).toBe("body");
    expect(bad({ resourceSpans: {} })).toBe("resourceSpans");
    expect(bad({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "zz", spanId: "0123456789abcdef" }] }] }] })).toBe("resourceSpans[0].scopeSpans[0].spans[0].traceId");
    expect(bad({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "0".repeat(32), spanId: "0123456789abcdef" }] }] }] })).toBe("resourceSpans[0].scopeSpans[0].spans[0].traceId");
    const ok = { traceId: "a".repeat(32), spanId: "b".repeat(16), startTimeUnixNano: "1", endTimeUnixNano: "2" };
    expect(bad({ resourceSpans: [{ scopeSpans: [{ spans: [{ ...ok, startTimeUnixNano: "-1" }] }] }] })).toBe("resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano");
    expect(bad({ resourceSpans: [{ scopeSpans: [{ spans: [ok] }] }] })).toBe("none");
  });

  it("refuses numbers its columns cannot hold, naming them (a 503 the exporter retried forever, or a value stored wrapped)", () => {
    const ok = { traceId: "a".repeat(32), spanId: "b".repeat(16), startTimeUnixNano: "1", endTimeUnixNano: "2" };
    const fieldOf = (span: Record<string, unknown>) => {
      try {
        parseOtlpTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ ...ok, ...span }] }] }] });
        return "none";
      } catch (e) {
        return e instanceof OtlpError ? e.field.replace("resourceSpans[0].scopeSpans[0].spans[0].", "") : "other";
      }
    };
    // Past the platform's latest instant (2106-02-07T06:28:15Z): the Date and DateTime columns' end.
    for (const t of [1e308, 1e22, "99999999999999999999", "4294967296000000000"]) {
      expect(fieldOf({ startTimeUnixNano: t })).toBe("startTimeUnixNano");
      expect(fieldOf({ endTimeUnixNano: t })).toBe("endTimeUnixNano");
      expect(fieldOf({ events: [{ name: "exception", timeUnixNano: t }] })).toBe("events[0].timeUnixNano");
    }
    expect(fieldOf({ startTimeUnixNano: "4294967295000000000", endTimeUnixNano: "4294967295000000000" })).toBe("none");
    for (const kind of [6, 300, 1e20, -1, 1.5]) expect(fieldOf({ kind })).toBe("kind");
    for (const code of [3, 1e20, -5, 0.5]) expect(fieldOf({ status: { code } })).toBe("status.code");
    expect(fieldOf({ kind: "SPAN_KIND_SERVER", status: { code: "STATUS_CODE_OK" } })).toBe("none"); // not a number: unspecified, as before
    expect(fieldOf({ events: Array.from({ length: 1_001 }, () => ({ name: "e", timeUnixNano: "1" })) })).toBe("events");
    expect(fieldOf({ links: Array.from({ length: 1_001 }, () => ({ traceId: "c".repeat(32), spanId: "d".repeat(16) })) })).toBe("links");
    expect(fieldOf({ events: Array.from({ length: 1_000 }, () => ({ name: "e", timeUnixNano: "1" })) })).toBe("none");
  });

  it("an attribute named __proto__ is an attribute, not the prototype other attributes are read through", () => {
    const forged = { key: "__proto__", value: { kvlistValue: { values: [{ key: "http.request.id", value: { stringValue: "forged" } }, { key: "http.status_code", value: { intValue: 500 } }] } } };
    const { spans } = parseOtlpTraces({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "a".repeat(32), spanId: "b".repeat(16), startTimeUnixNano: "1", endTimeUnixNano: "2", attributes: [forged] }] }] }] });
    expect(spans[0]).toMatchObject({ request_id: "", http_status: 0 });
    expect(Object.getOwnPropertyDescriptor(JSON.parse(spans[0].attributes), "__proto__")?.value).toEqual({ "http.request.id": "forged", "http.status_code": 500 });
  });
});

describe("trace tree", () => {
  const row = (span: string, parent: string, start: number, service = "s"): SpanRow => ({
    trace_id: "t", span_id: span, parent_span_id: parent, service, name: span, kind: 2, start_us: start, duration_us: 1, status_code: 0, status_message: "", http_status: 0, request_id: "", attributes: "{}", events: "[]", links: "[]", link_trace_ids: [],
  });
  it("nests children under parents by start, keeps orphans as roots, drops duplicate deliveries", () => {
    const t = buildTree([row("c2", "a", 3, "b"), row("a", "", 1, "g"), row("c1", "a", 2, "b"), row("o", "missing", 5, "x"), row("a", "", 1, "g")]);
    expect(t.spanCount).toBe(4);
    expect(t.roots.map((r) => r.spanId)).toEqual(["a", "o"]);
    expect(t.roots[0].children.map((c) => c.spanId)).toEqual(["c1", "c2"]);
    expect(t.services).toEqual(["g", "b", "x"]);
  });

  it("nests at most MAX_TREE_DEPTH levels (a chain of 5,000 spans failed the answer's serialization), and a parent cycle's spans are roots, not lost", () => {
    const chain = Array.from({ length: 5_000 }, (_, i) => row(`s${i}`, i ? `s${i - 1}` : "", i));
    const t = buildTree(chain);
    expect(t.spanCount).toBe(5_000);
    expect(() => JSON.stringify(t)).not.toThrow();
    let depth = 0;
    for (let n = t.roots[0]; n.children.length; n = n.children[0]) depth++;
    expect(depth).toBe(MAX_TREE_DEPTH - 1);
    expect(t.roots.map((r) => r.spanId).slice(0, 3)).toEqual(["s0", `s${MAX_TREE_DEPTH}`, `s${2 * MAX_TREE_DEPTH}`]);
    expect(t.roots[1].parentSpanId).toBe(`s${MAX_TREE_DEPTH - 1}`);
    const count = (nodes: SpanNode[]): number => nodes.reduce((a, n) => a + 1 + count(n.children), 0);
    expect(count(t.roots)).toBe(5_000);
    // x -> y -> x: no span without a parent reaches them; each is shown once.
    const cycle = buildTree([row("x", "y", 2), row("y", "x", 1), row("r", "", 0)]);
    expect(count(cycle.roots)).toBe(3);
    expect(cycle.roots.map((r) => r.spanId)).toEqual(["r", "x"]);
    expect(cycle.roots[1].children.map((c) => c.spanId)).toEqual(["y"]);
  });
});
