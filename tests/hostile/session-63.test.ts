/**
 * Session 63's hostile round on real servers (PostgreSQL, Redis, Kafka, ClickHouse; the card processor
 * the fake behind the `stripe` SDK; gateways with the fast lane and without), every answer judged by
 * ./oracle.ts: no 5xx, no stack trace, file path, driver text or internal name, JSON errors in the
 * platform's shape naming the field. Classes no earlier round had tried (grepped in tests/), byte for
 * byte through both gateways, the two answering alike:
 * - method spellings on every public route: `get`, `GeT`, `Get`, `head`, methods llhttp knows that no
 *   route takes (PROPFIND, PURGE, SEARCH, LINK, MKCOL, QUERY), tokens it does not (`FOO`, `GET2`),
 *   and a CORS preflight (OPTIONS with Origin and Access-Control-Request-*);
 * - access tokens signed with the platform's key but shaped otherwise: a `kid`, `jku`, `x5u` header,
 *   `crit` (one the verifier does not know, and an empty one), `b64: false`, `typ` in other spellings,
 *   `exp` as a string, a float or 1e20, `iat` as a string or a float, `nbf` in the future and the
 *   past, `aud` as a list, a payload of kilobytes; the base64url text padded or in base64's `+/`;
 * - the Authorization scheme in other cases (`bearer`, `BEARER`, `bEaReR`: RFC 9110 §11.1, a
 *   case-insensitive token), two schemes in one header, an API key with white space around it;
 * - a JSON body declared US-ASCII (and its aliases), taken; with a byte above 0x7F, a 400 naming body;
 *   one declared `csUTF8` (IANA's alias of UTF-8), taken;
 * - a token's segments in another base64url spelling of the same bytes (the last character's unused
 *   bits set), each signed as spelt: one token, one spelling, or a 401;
 * - query parameters with no name (`?=1`, `?&=x`, `?=`), a 400 naming `query`.
 * Found and fixed at the root: the Authorization scheme was matched in its case (`bearer <token>`
 * was a 401), where RFC 9110 makes it case-insensitive (api-gateway authenticate.ts), and the log
 * scrubber masked `Bearer <x>` but not `bearer <x>` (kit telemetry/scrub.ts); a JSON body declared
 * US-ASCII was a 415 and a nameless query parameter named no field (kit, this session's first commits);
 * a token whose signature's last character had its unused bits set verified as the token, each spelling
 * a key of its own in the gateway's token cache (kit jwt.ts isCanonicalJwt), and `csUTF8` was a 415.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeepAliveClient } from "../helpers/keep-alive-client";
import { rawExchange } from "../helpers/raw-http";
import { publicRoutesOf } from "./public-routes";
import { judge } from "./oracle";
import { errorFieldOf, useRedTeamPlatform } from "./red-team-platform";

const rig = useRedTeamPlatform("session-63");
const { gateways, who, failures } = rig;
const VIAS = ["plain", "lane"] as const;
type Via = (typeof VIAS)[number];

const publicRoutes = () => publicRoutesOf(rig.p);

interface Answer {
  status: number;
  field?: string;
  body: string;
  headers: Record<string, string>;
}

/** One request written byte for byte to a gateway (`lines` after the request line and Host), judged by ./oracle.ts into `failures`. */
async function raw(via: Via, requestLine: string, lines: string[], body?: string | Buffer): Promise<Answer> {
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  const head = [requestLine, "Host: gw", ...lines, ...(bytes ? [`Content-Length: ${bytes.length}`] : []), "Connection: close"];
  const headBytes = Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1");
  const a = await rawExchange(gateways[via], [bytes ? Buffer.concat([headBytes, bytes]) : headBytes], 30_000);
  rig.judged++;
  const v = judge(a.status || 599, a.body, a.headers["content-type"] ?? null, rig.internalPorts);
  if (!v.ok) failures.push(`${via} ${requestLine.slice(0, 120)} -> ${a.status} [${v.problems.join(", ")}] ${a.body.slice(0, 200)}`);
  return { status: a.status, field: errorFieldOf(a.body), body: a.body, headers: a.headers };
}
const shape = (a: Answer) => `${a.status} ${a.field ?? ""}`.trim();
const bearer = (token: string) => `Authorization: Bearer ${token}`;

describe("method spellings and a CORS preflight on every public route, lane on and off", () => {
  it("a method in another case or one no route takes is a 4xx in the platform's shape, the same through both gateways", async () => {
    const METHODS = ["get", "GeT", "Get", "head", "post", "PROPFIND", "PURGE", "SEARCH", "LINK", "MKCOL", "QUERY", "FOO", "GET2"];
    const routes = publicRoutes();
    expect(routes.length).toBeGreaterThan(30);
    for (const r of routes) {
      for (const method of [...METHODS, r.route.method.toLowerCase()]) {
        const answers = await Promise.all(VIAS.map((via) => raw(via, `${method} ${r.path} HTTP/1.1`, [bearer(who.alice.token)])));
        for (const [i, a] of answers.entries()) expect.soft(a.status >= 400 && a.status < 500, `${VIAS[i]} ${method} ${r.route.url}: ${shape(a)}`).toBe(true);
        expect.soft(shape(answers[1]), `lane vs plain: ${method} ${r.route.url}`).toBe(shape(answers[0]));
      }
      const preflight = ["Origin: https://evil.example", `Access-Control-Request-Method: ${r.route.method}`, "Access-Control-Request-Headers: authorization, content-type"];
      const answers = await Promise.all(VIAS.map((via) => raw(via, `OPTIONS ${r.path} HTTP/1.1`, preflight)));
      for (const [i, a] of answers.entries()) {
        expect.soft(a.status < 500, `${VIAS[i]} preflight ${r.route.url}: ${shape(a)}`).toBe(true);
        // No origin is let in: a cross-origin page may not call the API with the user's credentials.
        expect.soft(Object.keys(a.headers).filter((h) => h.startsWith("access-control-")), `${VIAS[i]} preflight ${r.route.url}`).toEqual([]);
      }
      expect.soft(shape(answers[1]), `lane vs plain: preflight ${r.route.url}`).toBe(shape(answers[0]));
    }
    expect(failures).toEqual([]);
  }, 900_000);
});

describe("access tokens signed with the platform's key, shaped otherwise", () => {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signed = (header: Record<string, unknown>, payload: Record<string, unknown> | unknown[], spell: (b64url: string) => string = (s) => s) => {
    const input = `${spell(enc({ alg: "HS256", typ: "JWT", ...header }))}.${spell(enc(payload))}`;
    const mac = createHmac("sha256", Buffer.from(rig.p.env.JWT_SECRET, "utf8")).update(input).digest("base64url");
    return `${input}.${spell(mac)}`;
  };
  const claims = (over: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return { role: "trader", ep: 0, sub: who.alice.id, iss: "ai-trading/user-management", aud: "ai-trading", iat: now, exp: now + 300, jti: "h63", ...over };
  };
  const me = async (via: Via, authorization: string) => raw(via, "GET /api/users/me HTTP/1.1", [authorization]);

  it("one the verifier cannot fully read (crit, a string exp or iat, nbf ahead, b64 false) is a 401; a kid, a float exp or a list aud changes nothing; padding and +/ are no base64url", async () => {
    const now = Math.floor(Date.now() / 1000);
    const padded = (s: string) => s + "=".repeat((4 - (s.length % 4)) % 4);
    const base64 = (s: string) => s.replace(/-/g, "+").replace(/_/g, "/");
    const cases: Array<[string, string, number]> = [
      ["a sanity check: well formed", signed({}, claims()), 200],
      ["kid", signed({ kid: "../../etc/passwd" }, claims()), 200],
      ["jku and x5u", signed({ jku: "https://evil.example/jwks", x5u: "https://evil.example/x5" }, claims()), 200],
      ["crit naming an unknown header", signed({ crit: ["h63"], h63: true }, claims()), 401],
      ["crit naming exp", signed({ crit: ["exp"] }, claims()), 401],
      ["an empty crit", signed({ crit: [] }, claims()), 401],
      ["b64 false", signed({ b64: false, crit: ["b64"] }, claims()), 401],
      ["typ jwt in lower case", signed({ typ: "jwt" }, claims()), 200],
      ["typ application/jwt", signed({ typ: "application/jwt" }, claims()), 200],
      ["typ JOSE", signed({ typ: "JOSE" }, claims()), 401],
      ["alg in lower case", signed({ alg: "hs256" }, claims()), 401],
      ["a payload that is a list", signed({}, [claims()]), 401],
      ["exp a string", signed({}, claims({ exp: String(now + 300) })), 401],
      ["exp a float", signed({}, claims({ exp: now + 300.5 })), 200],
      ["exp 1e20 (bounded by the token's maximum age)", signed({}, claims({ exp: 1e20 })), 200],
      ["exp past", signed({}, claims({ exp: now - 600 })), 401],
      ["iat a string", signed({}, claims({ iat: String(now) })), 401],
      ["iat a float", signed({}, claims({ iat: now + 0.5 })), 200],
      ["iat long ago, exp 1e20", signed({}, claims({ iat: now - 400 * 86_400, exp: 1e20 })), 401],
      ["nbf ahead", signed({}, claims({ nbf: now + 3_600 })), 401],
      ["nbf past", signed({}, claims({ nbf: now - 60 })), 200],
      ["aud a list holding the platform", signed({}, claims({ aud: ["elsewhere", "ai-trading"] })), 200],
      ["aud a list without it", signed({}, claims({ aud: ["elsewhere"] })), 401],
      ["role in upper case", signed({}, claims({ role: "TRADER" })), 401],
      ["role admin for a trader (epoch and role held by the gateway)", signed({}, claims({ role: "admin" })), 401],
      ["sub in upper case", signed({}, claims({ sub: who.alice.id.toUpperCase() })), 401],
      ["ep a string", signed({}, claims({ ep: "0" })), 401],
      ["ep a float", signed({}, claims({ ep: 0.5 })), 401],
      ["a payload of 6 KB", signed({}, claims({ pad: "x".repeat(6_000) })), 200],
      ["a payload past the header block", signed({}, claims({ pad: "x".repeat(20_000) })), 431],
      ["padded base64url", signed({}, claims(), padded), 401],
      ["base64's +/", signed({}, claims({ pad: "\u00ff\u00fe\u00fd>>>???" }), base64), 401],
    ];
    for (const via of VIAS)
      for (const [label, token, status] of cases) {
        const a = await me(via, `Authorization: Bearer ${token}`);
        expect.soft(a.status, `${via} ${label}: ${a.body.slice(0, 200)}`).toBe(status);
        if (a.status === 200) expect.soft(JSON.parse(a.body).user.id, `${via} ${label}`).toBe(who.alice.id);
      }
    expect(failures).toEqual([]);
  }, 300_000);

  it("a token's segments in another base64url spelling of the same bytes are a 401 as a bad signature is, first seen or already cached, on a kept-alive connection too", async () => {
    const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    /** `s` with its last character's unused low bits set (the same bytes to Node's decoder), or undefined when it has none. */
    const tailSpelt = (s: string) => {
      const unused = s.length % 4 === 2 ? 0x0f : s.length % 4 === 3 ? 0x03 : 0;
      return unused === 0 ? undefined : s.slice(0, -1) + ALPHABET[ALPHABET.indexOf(s.at(-1)!) | unused];
    };
    const mac = (input: string) => createHmac("sha256", Buffer.from(rig.p.env.JWT_SECRET, "utf8")).update(input).digest("base64url");
    /** A token never sent before, and one with segment `at` spelt with tail bits and signed as spelt (a valid MAC over that text). */
    const pair = (at: number) => {
      for (let n = 0; ; n++) {
        const segments = [enc({ alg: "HS256", typ: "JWT", ...(n % 3 ? { kid: "k".repeat(n % 3) } : {}) }), enc(claims({ jti: `h63-spelling-${at}-${n}` }))];
        const signature = mac(segments.join("."));
        const spelt = tailSpelt(at === 2 ? signature : segments[at]);
        if (spelt === undefined) continue;
        const input = at === 2 ? segments.join(".") : segments.map((x, i) => (i === at ? spelt : x)).join(".");
        return { canonical: `${segments.join(".")}.${signature}`, spelt: at === 2 ? `${input}.${spelt}` : `${input}.${mac(input)}` };
      }
    };
    const errorOf = (a: { body: string }) => {
      const { code, message } = JSON.parse(a.body).error ?? {};
      return { code, message };
    };
    const t = who.alice.token;
    const [head, payload, signature] = t.split(".");
    for (const via of VIAS) {
      // The answer to a wrong signature: the shape every other spelling must get.
      const wrong = await me(via, bearer(`${head}.${payload}.${signature.slice(0, -2)}${signature.at(-2) === "A" ? "B" : "A"}${signature.at(-1)}`));
      expect.soft(wrong.status, `${via} a wrong signature`).toBe(401);
      for (const [at, name] of ["header", "payload", "signature"].entries()) {
        const { canonical, spelt } = pair(at);
        const seen = [`${via} ${name} spelt otherwise, never seen`, `${via} ${name} spelt otherwise, its token cached`];
        const first = await me(via, bearer(spelt));
        expect.soft([first.status, errorOf(first)], seen[0]).toEqual([401, errorOf(wrong)]);
        expect.soft((await me(via, bearer(canonical))).status, `${via} ${name} canonical`).toBe(200);
        const again = await me(via, bearer(spelt));
        expect.soft([again.status, errorOf(again)], seen[1]).toEqual([401, errorOf(wrong)]);
      }
      // The platform's own token, in use (cached): its signature with tail bits; padded, or in +/ (not b64token: the scheme's 401).
      expect.soft((await me(via, bearer(t))).status, `${via} alice's token`).toBe(200);
      const tailed = await me(via, bearer(`${head}.${payload}.${tailSpelt(signature)}`));
      expect.soft([tailed.status, errorOf(tailed)], `${via} alice's token, its signature with tail bits`).toEqual([401, errorOf(wrong)]);
      for (const [label, token] of [["padded", `${t}=`], ["+/", `${head}.${payload}.${signature.replace(/-/g, "+").replace(/_/g, "/")}`]])
        if (token !== t) expect.soft((await me(via, bearer(token))).status, `${via} alice's token ${label}`).toBe(401);
      // One connection, the token then its other spelling (the fast lane's per-connection TokenMemo holds the first).
      const conn = await KeepAliveClient.open(gateways[via]);
      try {
        const statuses: number[] = [];
        for (const token of [t, `${head}.${payload}.${tailSpelt(signature)}`, t]) {
          conn.send(`GET /api/users/me HTTP/1.1\r\nHost: gw\r\n${bearer(token)}\r\n\r\n`);
          statuses.push((await conn.next(30_000)).status);
        }
        expect.soft(statuses, `${via} kept alive: the token, its other spelling, the token`).toEqual([200, 401, 200]);
      } finally {
        conn.close();
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it("the scheme in any case is Bearer (RFC 9110 §11.1); two schemes, or a scheme alone, a 401; an API key with white space around it is the key", async () => {
    const t = who.alice.token;
    const made = (await rig.gw("alice", "POST", "/api/users/api-keys", { body: { name: "h63" } })).json;
    const key = made.key as string;
    const cases: Array<[string, string[], number]> = [
      ["bearer", [`Authorization: bearer ${t}`], 200],
      ["BEARER", [`Authorization: BEARER ${t}`], 200],
      ["bEaReR", [`Authorization: bEaReR ${t}`], 200],
      ["two spaces after the scheme (RFC 6750: 1*SP)", [`Authorization: Bearer  ${t}`], 200],
      ["a tab after the scheme", [`Authorization: Bearer\t${t}`], 401],
      ["a space inside the token", [`Authorization: Bearer ${t.slice(0, 20)} ${t.slice(20)}`], 401],
      ["Bearer and Basic in one header", [`Authorization: Bearer ${t}, Basic dXNlcjpwYXNz`], 401],
      ["Basic and Bearer in one header", [`Authorization: Basic dXNlcjpwYXNz, Bearer ${t}`], 401],
      ["Bearers", [`Authorization: Bearers ${t}`], 401],
      ["Bearer: ", [`Authorization: Bearer: ${t}`], 401],
      ["Token", [`Authorization: Token ${t}`], 401],
      ["bearer alone", ["Authorization: bearer"], 401],
      ["an API key with spaces around it", [`X-Api-Key:   ${key}   `], 200],
      ["an API key with tabs around it", [`X-Api-Key:\t${key}\t`], 200],
      ["an API key with a space inside it", [`X-Api-Key: ${key.slice(0, 8)} ${key.slice(8)}`], 401],
      ["an API key as a Bearer token", [`Authorization: Bearer ${key}`], 401],
      ["an API key and a lower-case bearer", [`Authorization: bearer ${t}`, `X-Api-Key: ${key}`], 400],
    ];
    for (const via of VIAS)
      for (const [label, lines, status] of cases) {
        const a = await raw(via, "GET /api/users/me HTTP/1.1", lines);
        expect.soft(a.status, `${via} ${label}: ${a.body.slice(0, 200)}`).toBe(status);
        if (a.status === 200) expect.soft(JSON.parse(a.body).user.id, `${via} ${label}`).toBe(who.alice.id);
      }
    // Revoked, as the other cases revoke theirs: alice stays far below her 20 active keys for the tests after this one.
    expect((await rig.gw("alice", "DELETE", `/api/users/api-keys/${made.id}`)).status, "revoking h63").toBe(204);
    expect(failures).toEqual([]);
  }, 300_000);
});

describe("a JSON body declared US-ASCII or csUTF8, and query parameters with no name (kit, session 63)", () => {
  /** Each key a case makes is revoked at once: alice stays far below the per-user limit of 20 active keys, whatever other cases add. */
  const revoked = async (a: Answer) => {
    if (a.status === 201) expect.soft((await rig.gw("alice", "DELETE", `/api/users/api-keys/${JSON.parse(a.body).id}`)).status, "revoking a key made").toBe(204);
  };
  it("US-ASCII in its names, and csUTF8 (IANA's alias of UTF-8), are taken, a byte above 0x7F in US-ASCII a 400 naming body, other charsets a 415; ?=1, ?&=x and ?= a 400 naming query", async () => {
    for (const via of VIAS) {
      for (const charset of ["us-ascii", "US-ASCII", '"us-ascii"', "ascii", "ISO646-US", "ANSI_X3.4-1968", "csUTF8", "CSUTF8", '"csutf8"']) {
        const a = await raw(via, "POST /api/users/api-keys HTTP/1.1", [bearer(who.alice.token), `Content-Type: application/json; charset=${charset}`], JSON.stringify({ name: "ascii" }));
        expect.soft(a.status, `${via} ${charset}: ${a.body.slice(0, 200)}`).toBe(201);
        await revoked(a);
      }
      const utf8 = await raw(via, "POST /api/users/api-keys HTTP/1.1", [bearer(who.alice.token), "Content-Type: application/json; charset=csUTF8"], JSON.stringify({ name: "Zo\u00eb" }));
      expect.soft([utf8.status, utf8.status === 201 && JSON.parse(utf8.body).name], `${via} UTF-8 text declared csUTF8`).toEqual([201, "Zo\u00eb"]);
      await revoked(utf8);
      const latin1 = await raw(via, "POST /api/users/api-keys HTTP/1.1", [bearer(who.alice.token), "Content-Type: application/json; charset=us-ascii"], Buffer.from(JSON.stringify({ name: "Zo\u00eb" }), "latin1"));
      expect.soft(shape(latin1), `${via} latin1 labelled us-ascii`).toBe("400 body");
      // Parameters read whole: a charset inside another's quoted value is none; a quoted-pair is its character.
      for (const type of ['application/json; profile="x;charset=latin1"', 'application/json; charset="us\\-ascii"']) {
        const a = await raw(via, "POST /api/users/api-keys HTTP/1.1", [bearer(who.alice.token), `Content-Type: ${type}`], JSON.stringify({ name: "param" }));
        expect.soft(a.status, `${via} ${type}: ${a.body.slice(0, 200)}`).toBe(201);
        await revoked(a);
      }
      for (const charset of ["latin1", "utf-16", "windows-1252", "us-ascii-x", "csutf-8"]) {
        const a = await raw(via, "POST /api/users/api-keys HTTP/1.1", [bearer(who.alice.token), `Content-Type: application/json; charset=${charset}`], JSON.stringify({ name: "x" }));
        expect.soft(shape(a), `${via} ${charset}`).toBe("415 content-type");
      }
      for (const query of ["=1", "&=x", "=", "limit=5&="]) {
        const a = await raw(via, `GET /api/users/api-keys?${query} HTTP/1.1`, [bearer(who.alice.token)]);
        expect.soft(shape(a), `${via} ?${query}`).toBe("400 query");
        expect.soft(JSON.parse(a.body).error.message, `${via} ?${query}`).toMatch(/a parameter has no name/);
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);
});

describe("passwords spelt otherwise (user-management, session 63)", () => {
  it("the current password in NFD or full-width is not a new one; a minimum length counts the form hashed (NFKC)", async () => {
    const current = "Cr\u00e8me br\u00fbl\u00e9e fa\u00e7ade";
    const nfdShort = "\u00e9\u00e8\u00ea\u00eb\u00e0\u00e2".normalize("NFD");
    const email = `nfkc-${Date.now()}@example.com`;
    expect((await rig.gw("none", "POST", "/api/users/register", { body: { email, password: nfdShort } })).status).toBe(400);
    expect((await rig.gw("none", "POST", "/api/users/register", { body: { email, password: current } })).status).toBe(201);
    const token = (await rig.gw("none", "POST", "/api/users/login", { body: { email, password: current.normalize("NFD") } })).json.accessToken as string;
    const fullWidth = current.replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
    for (const via of VIAS)
      for (const newPassword of [current, current.normalize("NFD"), fullWidth, nfdShort]) {
        const a = await rig.gw(token, "POST", "/api/users/password", { via, body: { currentPassword: current, newPassword } });
        expect.soft([a.status, a.json.error?.field], `${via} ${JSON.stringify(newPassword)}`).toEqual([400, "newPassword"]);
      }
    expect((await rig.gw(token, "GET", "/api/users/me")).status).toBe(200);
    expect(failures).toEqual([]);
  }, 120_000);
});
