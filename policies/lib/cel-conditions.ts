/**
 * Session 65: what an admission `matchConditions` entry (a ValidatingAdmissionPolicy's, a webhook's) says about where it
 * applies. The API server judges an object only when every match condition (a CEL expression) is true; one that is false
 * skips the policy for that object, so `false`, or `request.namespace != "ai-trading"`, makes a guard that never judges the
 * platform's namespace while it reads as one. The text is parsed by `@bufbuild/cel` (the cel-spec grammar: raw, triple-quoted
 * and bytes literals, every escape, `1u`, comments, CEL's precedence), and this reads the part of CEL that can be judged
 * soundly here, with three-valued logic: literals (booleans, null, numbers, strings, bytes, lists), `!`, `&&`, `||` (CEL's
 * commutative forms: `false && x` is false whatever x is), `==`, `!=`, `in`, `? :`, the string methods `startsWith`,
 * `endsWith`, `contains`, and the values known for a write of the platform: the namespace (`request.namespace`,
 * `object.metadata.namespace`, `namespaceObject.metadata.name`), the namespace's labels (`namespaceObject.metadata.labels`, as
 * the stack declares them) and the operation (`request.operation`, CREATE or UPDATE). Anything else (the object's other
 * fields, the user, `has()`, other functions and macros, map literals, a key a map lacks) is unknown, and a condition unknown
 * for an object is not judged: whether it is false depends on what is written, which is the policy's own business, not a
 * hole in where it applies. A text the parser refuses is not judged where it applies (the API server refuses it too, so the
 * policy is never created) and counts as reading the requester when its text may (identityReading).
 */
import { parse as parseCel } from "@bufbuild/cel";
import { DeclaredNamespace } from "./admission";

/** The parser's expression node (cel.expr.Expr), named from parse's own type: cel-spec is the parser's dependency, not ours. */
type Expr = ReturnType<typeof parseCel>["expr"];
type Constant = Extract<Expr["exprKind"], { case: "constExpr" }>["value"];

const UNKNOWN_VALUE: unique symbol = Symbol("unknown");
/** A bytes literal's value: its own kind in CEL (never equal to a string), compared by its bytes. */
class Bytes { constructor(readonly hex: string) {} }
/** A value during evaluation: what CEL would have, or unknown (not known here, or an error at the API server). */
type Value = boolean | number | string | null | Bytes | Value[] | { [key: string]: Value } | typeof UNKNOWN_VALUE;

/**
 * The parsed expression, or undefined for a text the parser refuses (it throws on a syntax error). With `verbatim`, a string
 * literal whose value is not its text between the quotes (written with an escape: `'ci\x2ddeployer'`) stands as a value
 * unknown here: who a condition exempts, or which request field it reads, is bounded only by names written as they are read
 * (the name a reviewer lists in exemptPrincipals is the one in the condition's text).
 */
function parse(text: string, verbatim = false): Expr | undefined {
    let parsed: ReturnType<typeof parseCel>;
    try {
        // A comment runs to the end of its line, and the API server's reader takes one ending the text; this parser wants
        // its newline (without it `false // off for now` was refused and so not judged: a condition that skips every write).
        parsed = parseCel(`${text}\n`);
    } catch {
        return undefined;
    }
    if (!verbatim) return parsed.expr;
    const positions = parsed.sourceInfo?.positions ?? {};
    const written = (e: Expr, value: string) => {
        const at = positions[e.id.toString()];
        const quoted = (q: string) => text.startsWith(`${q}${value}${q}`, at) || text.startsWith(`r${q}${value}${q}`, at) || text.startsWith(`R${q}${value}${q}`, at);
        return at !== undefined && ['"""', "'''", '"', "'"].some(quoted);
    };
    const keepWritten = (e: Expr): Expr => {
        const value = stringLit(e);
        if (value !== undefined) return written(e, value) ? e : UNKNOWN_EXPR;
        return mapChildren(e, keepWritten);
    };
    return keepWritten(parsed.expr);
}

/** Every expression directly inside `e` (a call's target and arguments, a comprehension's parts, a map's keys and values). */
function children(e: Expr): Expr[] {
    const k = e.exprKind;
    switch (k.case) {
        case "selectExpr": return k.value.operand ? [k.value.operand] : [];
        case "callExpr": return [...(k.value.target ? [k.value.target] : []), ...k.value.args];
        case "listExpr": return k.value.elements;
        case "structExpr": return k.value.entries.flatMap((en) => [...(en.keyKind.case === "mapKey" ? [en.keyKind.value] : []), ...(en.value ? [en.value] : [])]);
        case "comprehensionExpr": {
            const c = k.value;
            return [c.iterRange, c.accuInit, c.loopCondition, c.loopStep, c.result].filter((x): x is Expr => x !== undefined);
        }
        default: return [];
    }
}

/** `e` with each expression directly inside it replaced by `f` of it (a copy; `e` is left as it is). */
function mapChildren(e: Expr, f: (x: Expr) => Expr): Expr {
    const k = e.exprKind;
    const opt = (x: Expr | undefined) => x && f(x);
    switch (k.case) {
        case "selectExpr": return { ...e, exprKind: { case: k.case, value: { ...k.value, operand: opt(k.value.operand) } } };
        case "callExpr": return { ...e, exprKind: { case: k.case, value: { ...k.value, target: opt(k.value.target), args: k.value.args.map(f) } } };
        case "listExpr": return { ...e, exprKind: { case: k.case, value: { ...k.value, elements: k.value.elements.map(f) } } };
        case "structExpr": return { ...e, exprKind: { case: k.case, value: { ...k.value, entries: k.value.entries.map((en) => ({ ...en,
            keyKind: en.keyKind.case === "mapKey" ? { case: "mapKey" as const, value: f(en.keyKind.value) } : en.keyKind, value: opt(en.value) })) } } };
        case "comprehensionExpr": {
            const c = k.value;
            return { ...e, exprKind: { case: k.case, value: { ...c, iterRange: opt(c.iterRange), accuInit: opt(c.accuInit),
                loopCondition: opt(c.loopCondition), loopStep: opt(c.loopStep), result: opt(c.result) } } };
        }
        default: return e;
    }
}

/** Stand-ins for what the parser does not read: a value unknown here (no name the evaluator knows), and `request` whole. */
const UNKNOWN_EXPR: Expr = parseCel("unread_by_the_pack").expr;
const WHOLE_REQUEST: Expr = parseCel("request").expr;

/**
 * A member read: `of.field` or `of[key]` (with the key's expression); `has(of.field)`, which tests the field's presence, only
 * with `presence`.
 */
function member(e: Expr, presence = false): { of: Expr; field: string | undefined; key: Expr | undefined } | undefined {
    const k = e.exprKind;
    if (k.case === "selectExpr" && (presence || !k.value.testOnly) && k.value.operand) return { of: k.value.operand, field: k.value.field, key: undefined };
    if (k.case === "callExpr" && k.value.function === "_[_]" && !k.value.target && k.value.args.length === 2) {
        return { of: k.value.args[0], field: stringLit(k.value.args[1]), key: k.value.args[1] };
    }
    return undefined;
}

const stringLit = (e: Expr): string | undefined =>
    e.exprKind.case === "constExpr" && e.exprKind.value.constantKind.case === "stringValue" ? e.exprKind.value.constantKind.value : undefined;
const identName = (e: Expr | undefined): string | undefined => (e?.exprKind.case === "identExpr" ? e.exprKind.value.name : undefined);
/** A global call's (no target) function and arguments, e.g. `_&&_`, `!_`, `@in`; undefined for anything else. */
const operator = (e: Expr): { fn: string; args: Expr[] } | undefined =>
    e.exprKind.case === "callExpr" && !e.exprKind.value.target ? { fn: e.exprKind.value.function, args: e.exprKind.value.args } : undefined;

/** A literal's value; an integer past a double's exact range, and the deprecated duration and timestamp constants, are unknown. */
function constant(c: Constant): Value {
    const k = c.constantKind;
    switch (k.case) {
        case "nullValue": return null;
        case "boolValue": case "stringValue": case "doubleValue": return k.value;
        case "int64Value": case "uint64Value": {
            // CEL compares int, uint and double by their numeric value (1u == 1 == 1.0), as numbers do here.
            const n = Number(k.value);
            return Number.isSafeInteger(n) ? n : UNKNOWN_VALUE;
        }
        case "bytesValue": return new Bytes(Buffer.from(k.value).toString("hex"));
        default: return UNKNOWN_VALUE;
    }
}

/** What is known of a write of the platform: its namespace (name and labels) and operation. */
export interface WriteContext { namespace: DeclaredNamespace; operation: "CREATE" | "UPDATE" }

const known = (v: Value): boolean => v !== UNKNOWN_VALUE;
const isMap = (v: Value): v is { [key: string]: Value } => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Bytes);

/** CEL's equality of two known values; unknown across kinds (an error, or false, by the CEL version: not judged). */
function equal(a: Value, b: Value): boolean | typeof UNKNOWN_VALUE {
    const kind = (v: Value) => (v === null ? "null" : Array.isArray(v) ? "list" : v instanceof Bytes ? "bytes" : typeof v);
    if (kind(a) !== kind(b) && a !== null && b !== null) return UNKNOWN_VALUE;
    if (Array.isArray(a) && Array.isArray(b)) {
        if (a.length !== b.length) return false;
        const each = a.map((x, j) => equal(x, b[j]));
        return each.includes(false) ? false : each.every((e) => e === true) ? true : UNKNOWN_VALUE;
    }
    if (a instanceof Bytes && b instanceof Bytes) return a.hex === b.hex;
    return isMap(a) || isMap(b) ? UNKNOWN_VALUE : a === b;
}

function evaluate(e: Expr, ctx: WriteContext): Value {
    const ev = (x: Expr) => evaluate(x, ctx);
    const k = e.exprKind;
    const read = member(e);
    if (read) {
        const of = ev(read.of);
        const key = read.key ? ev(read.key) : read.field;
        // A field not listed above is not known (the object's other fields, the user): unknown, not absent.
        return isMap(of) && typeof key === "string" && Object.prototype.hasOwnProperty.call(of, key) ? of[key] : UNKNOWN_VALUE;
    }
    switch (k.case) {
        case "constExpr": return constant(k.value);
        case "listExpr": {
            // An optional element (`[?x]`) may be left out: the list is not known.
            const items = k.value.elements.map(ev);
            return k.value.optionalIndices.length === 0 && items.every(known) ? items : UNKNOWN_VALUE;
        }
        case "identExpr": {
            const ns = { name: ctx.namespace.name, labels: ctx.namespace.labels };
            if (k.value.name === "request") return { namespace: ctx.namespace.name, operation: ctx.operation };
            if (k.value.name === "object") return { metadata: { namespace: ctx.namespace.name } };
            if (k.value.name === "namespaceObject") return { metadata: ns };
            return UNKNOWN_VALUE;
        }
        case "callExpr": break;
        // A map or message literal, a macro (comprehension), `has()`: unknown.
        default: return UNKNOWN_VALUE;
    }
    const call = k.value;
    if (call.target) {
        if (call.args.length !== 1) return UNKNOWN_VALUE;
        const s = ev(call.target);
        const a = ev(call.args[0]);
        if (typeof s !== "string" || typeof a !== "string") return UNKNOWN_VALUE;
        if (call.function === "startsWith") return s.startsWith(a);
        if (call.function === "endsWith") return s.endsWith(a);
        if (call.function === "contains") return s.includes(a);
        return UNKNOWN_VALUE;
    }
    const args = call.args;
    if (call.function === "!_" && args.length === 1) { const v = ev(args[0]); return typeof v === "boolean" ? !v : UNKNOWN_VALUE; }
    if (call.function === "_?_:_" && args.length === 3) {
        const t = ev(args[0]);
        if (typeof t === "boolean") return t ? ev(args[1]) : ev(args[2]);
        const y = ev(args[1]);
        const o = ev(args[2]);
        return known(y) && known(o) && equal(y, o) === true ? y : UNKNOWN_VALUE;
    }
    if ((call.function === "_&&_" || call.function === "_||_") && args.length >= 2) {
        const absorbing = call.function === "_||_";
        const each = args.map(ev);
        if (each.includes(absorbing)) return absorbing;
        return each.every((v) => v === !absorbing) ? !absorbing : UNKNOWN_VALUE;
    }
    if (args.length !== 2) return UNKNOWN_VALUE;
    const [l, r] = args.map(ev);
    if (!known(l) || !known(r)) return UNKNOWN_VALUE;
    if (call.function === "_==_") return equal(l, r);
    if (call.function === "_!=_") { const eq = equal(l, r); return typeof eq === "boolean" ? !eq : eq; }
    if (call.function === "@in" && Array.isArray(r)) {
        const each = r.map((x) => equal(x, l));
        return each.includes(true) ? true : each.every((eq) => eq === false) ? false : UNKNOWN_VALUE;
    }
    if (call.function === "@in") return isMap(r) && typeof l === "string" ? Object.prototype.hasOwnProperty.call(r, l) : UNKNOWN_VALUE;
    return UNKNOWN_VALUE;
}

/** A policy's `spec.variables`, each name's expression: what `variables.<name>` stands for in its matchConditions. */
export type PolicyVariables = Record<string, string>;

/**
 * `e` with each `variables.<name>` (or `variables['<name>']`) replaced by that variable's expression, itself so inlined
 * (session 65b: the API server gives match conditions the policy's variables, so `variables.user != 'ci-deployer'` reads the
 * requester when `user` does). A variable the parser does not read stands as `unread(its text)`; `variables` used any
 * other way (whole, by a computed key, a name not declared) as `unread` of every variable's text joined.
 */
function inlineVariables(e: Expr, variables: PolicyVariables, unread: (text: string) => Expr, verbatim: boolean, depth = 0): Expr {
    const all = () => unread(Object.values(variables).join(" "));
    const read = member(e);
    if (read && identName(read.of) === "variables") {
        const name = read.field;
        const text = name === undefined || !Object.prototype.hasOwnProperty.call(variables, name) ? undefined : variables[name];
        if (text === undefined || depth > 20) return all();
        const ast = parse(text, verbatim);
        return ast ? inlineVariables(ast, variables, unread, verbatim, depth + 1) : unread(text);
    }
    if (identName(e) === "variables") return all();
    return mapChildren(e, (x) => inlineVariables(x, variables, unread, verbatim, depth));
}

/**
 * The writes of the platform (each declared namespace, CREATE and UPDATE) for which the match condition `expression` is
 * surely false: the policy skips every such object. Empty when it is true, unknown or not read here (see the header).
 */
export function writesSkipped(expression: string, namespaces: DeclaredNamespace[], variables: PolicyVariables = {}): WriteContext[] {
    const parsed = parse(expression);
    const ast = parsed && inlineVariables(parsed, variables, () => UNKNOWN_EXPR, false);
    if (!ast) return [];
    return namespaces.flatMap((namespace) => (["CREATE", "UPDATE"] as const).map((operation) => ({ namespace, operation })))
        .filter((ctx) => evaluate(ast, ctx) === false);
}

/**
 * Session 65b: who makes the request. The principals a condition may skip the policy for, by kind: users (the
 * requester's `username`) and groups (one of its `groups`).
 */
export interface Principals { users: string[]; groups: string[] }

/** AdmissionRequest fields that say nothing of the requester (`userInfo` does; anything not named here may). */
const REQUEST_FIELDS = new Set(["uid", "kind", "resource", "subResource", "requestKind", "requestResource", "requestSubResource",
    "name", "namespace", "operation", "options", "dryRun", "object", "oldObject"]);

/**
 * Whether an expression may read who makes the request: `request.userInfo` (as a field or a literal key), `request` used in
 * any other way than reading one of REQUEST_FIELDS or testing one's presence (whole, as a macro's or function's target, by a
 * computed key), or
 * `authorizer` (it answers what the requester may do).
 */
function readsIdentity(e: Expr): boolean {
    const read = member(e, true);
    if (read && identName(read.of) === "request") {
        if (read.field === undefined || !REQUEST_FIELDS.has(read.field)) return true;
        return read.key !== undefined && readsIdentity(read.key);
    }
    const name = identName(e);
    if (name !== undefined) return name === "request" || name === "authorizer";
    return children(e).some(readsIdentity);
}

/** `request.userInfo.username` or `request.userInfo.groups` (as fields or literal keys): which, or undefined. */
function userInfoField(e: Expr): "username" | "groups" | undefined {
    const read = member(e);
    const of = read && member(read.of);
    if (!of || identName(of.of) !== "request" || of.field !== "userInfo") return undefined;
    return read.field === "username" || read.field === "groups" ? read.field : undefined;
}

const NONE: Principals = { users: [], groups: [] };
const join = (a: Principals | undefined, b: Principals | undefined): Principals | undefined =>
    a && b ? { users: [...a.users, ...b.users], groups: [...a.groups, ...b.groups] } : undefined;

/**
 * The principals whose requests alone an expression's value can turn on, or undefined when that is not shown. With
 * `falseOnly` (P): whenever it is false for a requester outside the result, it is false for every requester (its falsity
 * does not turn on who writes, except for those principals). Without (Q): the same of its truth. An expression that does
 * not read the requester has both, with none; `a && b` and `a || b` have each when both sides have it (the union); `!a`
 * swaps them; `c ? a : b` with `c` not reading the requester has what both branches have. The atoms: `username != 'x'` has
 * P with the user x, `username == 'x'` and `username in ['x', ...]` have Q with those users, `'g' in groups` Q with the
 * group g. Anything else reading the requester has neither: unbounded.
 */
function principalsTurnedOn(e: Expr, falseOnly: boolean): Principals | undefined {
    if (!readsIdentity(e)) return NONE;
    const op = operator(e);
    if (!op) return undefined;
    const { fn, args } = op;
    if (fn === "!_" && args.length === 1) return principalsTurnedOn(args[0], !falseOnly);
    if (fn === "_?_:_" && args.length === 3) {
        return readsIdentity(args[0]) ? undefined : join(principalsTurnedOn(args[1], falseOnly), principalsTurnedOn(args[2], falseOnly));
    }
    if (fn === "_&&_" || fn === "_||_") return args.map((a) => principalsTurnedOn(a, falseOnly)).reduce(join, NONE);
    if (args.length !== 2) return undefined;
    const [l, r] = args;
    const [field, other] = userInfoField(l) ? [userInfoField(l), r] : [userInfoField(r), l];
    if ((fn === "_==_" || fn === "_!=_") && field === "username" && stringLit(other) !== undefined) {
        return falseOnly === (fn === "_!=_") ? { users: [stringLit(other)!], groups: [] } : undefined;
    }
    if (fn === "@in" && !falseOnly && userInfoField(l) === "username" && r.exprKind.case === "listExpr" &&
        r.exprKind.value.optionalIndices.length === 0 && r.exprKind.value.elements.every((x) => stringLit(x) !== undefined)) {
        return { users: r.exprKind.value.elements.map((x) => stringLit(x)!), groups: [] };
    }
    if (fn === "@in" && !falseOnly && userInfoField(r) === "groups" && stringLit(l) !== undefined) {
        return { users: [], groups: [stringLit(l)!] };
    }
    return undefined;
}

/** What a match condition says of who makes the request: whether it reads the requester, and whom it may skip. */
export interface IdentityReading {
    /** The principals the condition may skip the policy for, and them only; undefined when the pack cannot bound them. */
    skips: Principals | undefined;
}

/**
 * Whether a match condition reads who makes the request (`request.userInfo`, `authorizer`: see readsIdentity), and if so
 * the principals it may be false for, the others' writes being judged whoever writes them (principalsTurnedOn's P); a
 * condition the parser does not read counts as reading the requester when its text names `userInfo` or `authorizer`, or
 * uses `request` other than by one of REQUEST_FIELDS. The policy's `variables` are read through (inlineVariables).
 * Undefined for a condition that does not read the requester.
 */
export function identityReading(expression: string, variables: PolicyVariables = {}): IdentityReading | undefined {
    const fields = [...REQUEST_FIELDS].join("|");
    const other = new RegExp(`\\brequest\\b(?!\\s*(?:\\.\\s*(?:${fields})\\b|\\[\\s*(["'])(?:${fields})\\1\\s*\\]))`);
    const textReads = (text: string) => /userInfo|\bauthorizer\b/.test(text) || other.test(text);
    const parsed = parse(expression, true);
    if (!parsed) return textReads(expression) || (/\bvariables\b/.test(expression) && textReads(Object.values(variables).join(" "))) ? { skips: undefined } : undefined;
    // An unread text that may read the requester stands as `request` whole: reading it, unbounded.
    const ast = inlineVariables(parsed, variables, (text) => (textReads(text) ? WHOLE_REQUEST : UNKNOWN_EXPR), true);
    if (!readsIdentity(ast)) return undefined;
    const skips = principalsTurnedOn(ast, true);
    return { skips: skips && { users: [...new Set(skips.users)].sort(), groups: [...new Set(skips.groups)].sort() } };
}
