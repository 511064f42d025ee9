/**
 * Every error text a service can answer a client, read from the source (session 52): each argument
 * of the kit's error makers (HttpError, badRequest ... unavailable, errorBody, sendError,
 * rawErrorAnswer) in services/src, its literal parts and what it interpolates, must name no internal
 * thing (tests/hostile/internal-names.ts: a catalog service, a datastore or driver, a topic, a
 * table). `order-management answered 503` told a client which service stands behind /api/orders;
 * the gateway's 502 named the service it could not reach. An interpolated service definition's
 * name (`${service.name}`) is refused as such: it is always an internal name. Nor may a text name a
 * service's configuration key (every module's own and the common ones): it is the operator's setting.
 * The hostile suites judge the answers themselves with the same list (tests/hostile/oracle.ts).
 * A readiness check's reason is answered too (`/ready`'s `dependencies.<check>.error`): since session 57
 * the texts of the errors thrown in the checks services add (`addReadinessCheck`'s callback, and the
 * `checkReady` methods they call) name no configuration key either (payment-service's
 * `disabled: PAYMENT_PROCESSOR_API_KEY not set`; its log names the keys).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { catalog, findService } from "../../services/src/catalog";
import { commonEnv } from "../../services/src/kit/service-config";
import { registry } from "../../services/src/registry";
import { HttpError, PeerClient } from "../../services/src/kit";
import { internalNamesIn } from "../hostile/internal-names";

const ROOT = join(__dirname, "../..");
const SOURCES = join(ROOT, "services/src");
/**
 * The kit's ways of making an answer's error (services/src/kit/errors.ts, raw-answers.ts), and the
 * errors whose message a route answers as it is (backtest parameters, the model registry, OTLP input,
 * a model that cannot be loaded, missing features).
 */
const ERROR_MAKERS = new Set([
  "HttpError", "badRequest", "unauthorized", "forbidden", "notFound", "conflict", "unavailable", "shuttingDown", "datastoreUnavailable", "errorBody", "sendError", "rawErrorAnswer",
  "ParameterError", "RegistryError", "OtlpError", "ModelLoadError", "PredictionRefused",
]);
/** An interpolation that is a service's catalog name whatever its value. */
const SERVICE_NAME = /\b(?:service|definition|upstream|peer|target|callee)\.name$|^(?:serviceName|upstreamName|peerName)$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const calleeName = (e: ts.Expression): string | undefined => (ts.isIdentifier(e) ? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : undefined);

interface ErrorText {
  where: string;
  literal: string;
  interpolated: string[];
}

/** The texts of every error-maker call in one file. */
function errorTexts(file: string): ErrorText[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const out: ErrorText[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isCallExpression(node) || ts.isNewExpression(node)) && ERROR_MAKERS.has(calleeName(node.expression) ?? "")) {
      const literal: string[] = [];
      const interpolated: string[] = [];
      const collect = (n: ts.Node) => {
        // publicServiceName("order-management") answers the service's public route, not its name.
        if (ts.isCallExpression(n) && calleeName(n.expression) === "publicServiceName") return;
        if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) literal.push(n.text);
        else if (ts.isTemplateExpression(n)) {
          literal.push(n.head.text, ...n.templateSpans.map((s) => s.literal.text));
          for (const s of n.templateSpans) interpolated.push(s.expression.getText(source));
        }
        ts.forEachChild(n, collect);
      };
      for (const a of node.arguments ?? []) collect(a);
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
      out.push({ where: `${relative(ROOT, file)}:${line + 1}`, literal: literal.join(" | "), interpolated });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The texts of the errors thrown in one file's readiness checks: `addReadinessCheck`'s callbacks and the `checkReady` methods. */
function readinessTexts(file: string): ErrorText[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const out: ErrorText[] = [];
  const thrown = (scope: ts.Node) => {
    const visit = (n: ts.Node) => {
      if (ts.isThrowStatement(n) && n.expression && ts.isNewExpression(n.expression)) {
        const literal: string[] = [];
        const collect = (x: ts.Node) => {
          if (ts.isStringLiteral(x) || ts.isNoSubstitutionTemplateLiteral(x)) literal.push(x.text);
          else if (ts.isTemplateExpression(x)) literal.push(x.head.text, ...x.templateSpans.map((s) => s.literal.text));
          ts.forEachChild(x, collect);
        };
        for (const a of n.expression.arguments ?? []) collect(a);
        const { line } = source.getLineAndCharacterOfPosition(n.getStart(source));
        out.push({ where: `${relative(ROOT, file)}:${line + 1}`, literal: literal.join(" | "), interpolated: [] });
      }
      ts.forEachChild(n, visit);
    };
    visit(scope);
  };
  const find = (node: ts.Node) => {
    if (ts.isCallExpression(node) && calleeName(node.expression) === "addReadinessCheck") for (const a of node.arguments.slice(1)) thrown(a);
    else if (ts.isMethodDeclaration(node) && node.name.getText(source) === "checkReady") thrown(node);
    else ts.forEachChild(node, find);
  };
  find(source);
  return out;
}

/** Every configuration key of the catalog's services (their own and the common ones). */
async function configKeys(): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const def of catalog.filter((d) => registry[d.name])) {
    for (const k of [...Object.keys((await registry[def.name]()).config ?? {}), ...Object.keys(commonEnv(def))]) keys.add(k);
  }
  return keys;
}

const keysNamed = (texts: ErrorText[], keys: Set<string>) => texts.flatMap((t) => [...t.literal.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)].filter((m) => keys.has(m[0])).map((m) => `${t.where}: ${m[0]}`));

describe("error texts name nothing internal (session 52)", () => {
  const all = files(SOURCES).flatMap(errorTexts);

  it("reads the error makers' calls across services/src (the gateway's included)", () => {
    expect(all.length).toBeGreaterThan(250);
    expect(all.filter((t) => t.where.includes("api-gateway/")).length).toBeGreaterThan(15);
  });

  it("no literal part of an error text names a service, datastore, driver, topic or table", () => {
    const named = all.flatMap((t) => internalNamesIn(t.literal).map((n) => `${t.where}: ${n} in "${t.literal.slice(0, 160)}"`));
    expect(named).toEqual([]);
  });

  it("no error text interpolates a service's catalog name", () => {
    const named = all.flatMap((t) => t.interpolated.filter((x) => SERVICE_NAME.test(x)).map((x) => `${t.where}: \${${x}}`));
    expect(named).toEqual([]);
  });

  it("a peer that does not answer is named by its public route (the kit's 502 was `order-management did not answer`, answered as is)", async () => {
    const peers = new PeerClient(findService("ai-orchestrator")!, { SERVICE_ORDER_MANAGEMENT_URL: "http://127.0.0.1:9" });
    const e = await peers.call("order-management", "/x", { timeoutMs: 2_000 }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(HttpError);
    expect([(e as HttpError).statusCode, (e as HttpError).message, internalNamesIn((e as HttpError).message)]).toEqual([502, "the service at /api/orders/ did not answer", []]);
  });

  it("no error text names a service's configuration key (an operator's setting, not the client's: `BACKTEST_REPLAY_DIR is not set`)", async () => {
    const keys = await configKeys();
    expect(keys.size).toBeGreaterThan(100);
    expect(keysNamed(all, keys)).toEqual([]);
  }, 120_000);

  it("no readiness reason names a configuration key (/ready answered payment-service's `disabled: PAYMENT_PROCESSOR_API_KEY not set`)", async () => {
    const reasons = files(SOURCES).flatMap(readinessTexts);
    // (payment-service's processor and charge-lock checks at least)
    expect(reasons.filter((r) => r.where.includes("payment-service/")).length).toBeGreaterThanOrEqual(3);
    expect(keysNamed(reasons, await configKeys())).toEqual([]);
  }, 120_000);
});
