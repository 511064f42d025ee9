/**
 * Session 65: what an admission `matchConditions` entry (a ValidatingAdmissionPolicy's, a webhook's) says about where it
 * applies. The API server judges an object only when every match condition (a CEL expression) is true; one that is false
 * skips the policy for that object, so `false`, or `request.namespace != "ai-trading"`, makes a guard that never judges the
 * platform's namespace while it reads as one. This reads the part of CEL that can be judged soundly here, with three-valued
 * logic: literals (booleans, null, numbers, strings, lists), `!`, `&&`, `||` (CEL's commutative forms: `false && x` is false
 * whatever x is), `==`, `!=`, `in`, `? :`, parentheses, the string methods `startsWith`, `endsWith`, `contains`, and the
 * values known for a write of the platform: the namespace (`request.namespace`, `object.metadata.namespace`,
 * `namespaceObject.metadata.name`), the namespace's labels (`namespaceObject.metadata.labels`, as the stack declares them) and
 * the operation (`request.operation`, CREATE or UPDATE). Anything else (the object's other fields, the user, `has()`,
 * other functions and macros, a key a map lacks) is unknown, and a condition unknown for an object is not judged: whether
 * it is false depends on what is written, which is the policy's own business, not a hole in where it applies.
 */
import { DeclaredNamespace } from "./admission";

const UNKNOWN_VALUE: unique symbol = Symbol("unknown");
/** A value during evaluation: what CEL would have, or unknown (not known here, or an error at the API server). */
type Value = boolean | number | string | null | Value[] | { [key: string]: Value } | typeof UNKNOWN_VALUE;

type Node =
    | { k: "lit"; v: Value }
    | { k: "list"; items: Node[] }
    | { k: "ident"; name: string }
    | { k: "select"; of: Node; field: string }
    | { k: "index"; of: Node; key: Node }
    | { k: "call"; of: Node | undefined; name: string; args: Node[] }
    | { k: "not"; of: Node }
    | { k: "bin"; op: string; l: Node; r: Node }
    | { k: "cond"; test: Node; yes: Node; no: Node };

const TOKEN = /\s*(?:(\d+\.\d+|\d+)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|&&|\|\||<=|>=|[!()[\].,?:<>]))/y;

function tokenize(text: string): string[] | undefined {
    const out: string[] = [];
    TOKEN.lastIndex = 0;
    while (TOKEN.lastIndex < text.length) {
        if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
        const at = TOKEN.lastIndex;
        const m = TOKEN.exec(text);
        if (!m || TOKEN.lastIndex === at) return undefined;
        out.push(m[1] ?? m[2] ?? m[3] ?? m[4]);
    }
    return out;
}

/** A recursive-descent parser of the subset above (CEL's precedence: ?:, ||, &&, relations, unary, member); undefined past it. */
function parse(text: string): Node | undefined {
    const tokens = tokenize(text);
    if (!tokens) return undefined;
    let i = 0;
    const peek = () => tokens[i];
    const eat = (t: string) => (tokens[i] === t ? (i++, true) : false);
    const expect = (t: string) => { if (!eat(t)) throw new Error(`expected ${t}`); };
    const conditional = (): Node => {
        const test = or();
        if (!eat("?")) return test;
        const yes = conditional();
        expect(":");
        return { k: "cond", test, yes, no: conditional() };
    };
    const or = (): Node => { let l = and(); while (eat("||")) l = { k: "bin", op: "||", l, r: and() }; return l; };
    const and = (): Node => { let l = relation(); while (eat("&&")) l = { k: "bin", op: "&&", l, r: relation() }; return l; };
    const relation = (): Node => {
        let l = unary();
        while (["==", "!=", "in", "<", "<=", ">", ">="].includes(peek())) l = { k: "bin", op: tokens[i++], l, r: unary() };
        return l;
    };
    const unary = (): Node => (eat("!") ? { k: "not", of: unary() } : member());
    const args = (): Node[] => {
        const out: Node[] = [];
        if (eat(")")) return out;
        do out.push(conditional()); while (eat(","));
        expect(")");
        return out;
    };
    const member = (): Node => {
        let n = primary();
        for (;;) {
            if (eat(".")) {
                const field = tokens[i++];
                if (!field || !/^[A-Za-z_]/.test(field)) throw new Error("field");
                n = eat("(") ? { k: "call", of: n, name: field, args: args() } : { k: "select", of: n, field };
            } else if (eat("[")) {
                const key = conditional();
                expect("]");
                n = { k: "index", of: n, key };
            } else return n;
        }
    };
    const primary = (): Node => {
        const t = tokens[i++];
        if (t === undefined) throw new Error("end");
        if (t === "(") { const n = conditional(); expect(")"); return n; }
        if (t === "[") {
            const items: Node[] = [];
            if (!eat("]")) { do items.push(conditional()); while (eat(",")); expect("]"); }
            return { k: "list", items };
        }
        if (t === "true" || t === "false") return { k: "lit", v: t === "true" };
        if (t === "null") return { k: "lit", v: null };
        if (/^\d/.test(t)) return { k: "lit", v: Number(t) };
        if (/^["']/.test(t)) {
            // Escapes other than a quote or a backslash (\n, \x41, \u0041) are not read: unknown, never a wrong literal.
            if (/\\[^"'\\]/.test(t)) return { k: "lit", v: UNKNOWN_VALUE };
            return { k: "lit", v: t.slice(1, -1).replace(/\\(.)/g, "$1") };
        }
        if (/^[A-Za-z_]/.test(t)) return eat("(") ? { k: "call", of: undefined, name: t, args: args() } : { k: "ident", name: t };
        throw new Error(`unexpected ${t}`);
    };
    try {
        const n = conditional();
        return i === tokens.length ? n : undefined;
    } catch {
        return undefined;
    }
}

/** What is known of a write of the platform: its namespace (name and labels) and operation. */
export interface WriteContext { namespace: DeclaredNamespace; operation: "CREATE" | "UPDATE" }

const known = (v: Value): boolean => v !== UNKNOWN_VALUE;
const isMap = (v: Value): v is { [key: string]: Value } => typeof v === "object" && v !== null && !Array.isArray(v);

/** CEL's equality of two known values; unknown across kinds (an error, or false, by the CEL version: not judged). */
function equal(a: Value, b: Value): boolean | typeof UNKNOWN_VALUE {
    const kind = (v: Value) => (v === null ? "null" : Array.isArray(v) ? "list" : typeof v);
    if (kind(a) !== kind(b) && a !== null && b !== null) return UNKNOWN_VALUE;
    if (Array.isArray(a) && Array.isArray(b)) {
        if (a.length !== b.length) return false;
        const each = a.map((x, j) => equal(x, b[j]));
        return each.includes(false) ? false : each.every((e) => e === true) ? true : UNKNOWN_VALUE;
    }
    return isMap(a) || isMap(b) ? UNKNOWN_VALUE : a === b;
}

function evaluate(n: Node, ctx: WriteContext): Value {
    const ev = (x: Node) => evaluate(x, ctx);
    switch (n.k) {
        case "lit": return n.v;
        case "list": { const items = n.items.map(ev); return items.every(known) ? items : UNKNOWN_VALUE; }
        case "ident": {
            const ns = { name: ctx.namespace.name, labels: ctx.namespace.labels };
            if (n.name === "request") return { namespace: ctx.namespace.name, operation: ctx.operation };
            if (n.name === "object") return { metadata: { namespace: ctx.namespace.name } };
            if (n.name === "namespaceObject") return { metadata: ns };
            return UNKNOWN_VALUE;
        }
        case "select": case "index": {
            const of = ev(n.of);
            const key = n.k === "select" ? n.field : ev(n.key);
            // A field not listed above is not known (the object's other fields, the user): unknown, not absent.
            return isMap(of) && typeof key === "string" && key in of ? of[key] : UNKNOWN_VALUE;
        }
        case "call": {
            if (n.of === undefined || n.args.length !== 1) return UNKNOWN_VALUE;
            const s = ev(n.of);
            const a = ev(n.args[0]);
            if (typeof s !== "string" || typeof a !== "string") return UNKNOWN_VALUE;
            if (n.name === "startsWith") return s.startsWith(a);
            if (n.name === "endsWith") return s.endsWith(a);
            if (n.name === "contains") return s.includes(a);
            return UNKNOWN_VALUE;
        }
        case "not": { const v = ev(n.of); return typeof v === "boolean" ? !v : UNKNOWN_VALUE; }
        case "cond": {
            const t = ev(n.test);
            if (typeof t === "boolean") return t ? ev(n.yes) : ev(n.no);
            const y = ev(n.yes);
            const o = ev(n.no);
            return known(y) && known(o) && equal(y, o) === true ? y : UNKNOWN_VALUE;
        }
        case "bin": {
            const l = ev(n.l);
            const r = ev(n.r);
            if (n.op === "&&" || n.op === "||") {
                const absorbing = n.op === "||";
                if (l === absorbing || r === absorbing) return absorbing;
                return l === !absorbing && r === !absorbing ? !absorbing : UNKNOWN_VALUE;
            }
            if (!known(l) || !known(r)) return UNKNOWN_VALUE;
            if (n.op === "==") return equal(l, r);
            if (n.op === "!=") { const e = equal(l, r); return typeof e === "boolean" ? !e : e; }
            if (n.op === "in" && Array.isArray(r)) {
                const each = r.map((x) => equal(x, l));
                return each.includes(true) ? true : each.every((e) => e === false) ? false : UNKNOWN_VALUE;
            }
            if (n.op === "in") return isMap(r) && typeof l === "string" ? l in r : UNKNOWN_VALUE;
            return UNKNOWN_VALUE;
        }
    }
}

/** A policy's `spec.variables`, each name's expression: what `variables.<name>` stands for in its matchConditions. */
export type PolicyVariables = Record<string, string>;

/**
 * `node` with each `variables.<name>` (or `variables['<name>']`) replaced by that variable's expression, itself so inlined
 * (session 65b: the API server gives match conditions the policy's variables, so `variables.user != 'ci-deployer'` reads the
 * requester when `user` does). A variable the parser does not read stands as `unread(its text)`; `variables` used any
 * other way (whole, by a computed key, a name not declared) as `unread` of every variable's text joined.
 */
function inlineVariables(node: Node, variables: PolicyVariables, unread: (text: string) => Node, depth = 0): Node {
    const go = (n: Node): Node => inlineVariables(n, variables, unread, depth);
    const all = () => unread(Object.values(variables).join(" "));
    if ((node.k === "select" || node.k === "index") && node.of.k === "ident" && node.of.name === "variables") {
        const name = node.k === "select" ? node.field : stringLit(node.key);
        const text = name === undefined || !Object.prototype.hasOwnProperty.call(variables, name) ? undefined : variables[name];
        if (text === undefined || depth > 20) return all();
        const ast = parse(text);
        return ast ? inlineVariables(ast, variables, unread, depth + 1) : unread(text);
    }
    switch (node.k) {
        case "lit": return node;
        case "ident": return node.name === "variables" ? all() : node;
        case "list": return { ...node, items: node.items.map(go) };
        case "select": return { ...node, of: go(node.of) };
        case "index": return { ...node, of: go(node.of), key: go(node.key) };
        case "call": return { ...node, of: node.of && go(node.of), args: node.args.map(go) };
        case "not": return { ...node, of: go(node.of) };
        case "bin": return { ...node, l: go(node.l), r: go(node.r) };
        case "cond": return { ...node, test: go(node.test), yes: go(node.yes), no: go(node.no) };
    }
}

/**
 * The writes of the platform (each declared namespace, CREATE and UPDATE) for which the match condition `expression` is
 * surely false: the policy skips every such object. Empty when it is true, unknown or not read here (see the header).
 */
export function writesSkipped(expression: string, namespaces: DeclaredNamespace[], variables: PolicyVariables = {}): WriteContext[] {
    const parsed = parse(expression);
    const ast = parsed && inlineVariables(parsed, variables, () => ({ k: "lit", v: UNKNOWN_VALUE }));
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

const stringLit = (n: Node): string | undefined => (n.k === "lit" && typeof n.v === "string" ? n.v : undefined);

/**
 * Whether a node may read who makes the request: `request.userInfo` (as a field or a literal key), `request` used in any
 * other way than reading one of REQUEST_FIELDS (whole, as a macro's or function's target, by a computed key), or
 * `authorizer` (it answers what the requester may do).
 */
function readsIdentity(n: Node): boolean {
    const requestField = (x: Node): string | undefined =>
        x.k === "select" ? x.field : x.k === "index" ? stringLit(x.key) : undefined;
    if ((n.k === "select" || n.k === "index") && n.of.k === "ident" && n.of.name === "request") {
        const field = requestField(n);
        if (field === undefined || !REQUEST_FIELDS.has(field)) return true;
        return n.k === "index" && readsIdentity(n.key);
    }
    switch (n.k) {
        case "lit": return false;
        case "ident": return n.name === "request" || n.name === "authorizer";
        case "list": return n.items.some(readsIdentity);
        case "select": return readsIdentity(n.of);
        case "index": return readsIdentity(n.of) || readsIdentity(n.key);
        case "call": return (n.of !== undefined && readsIdentity(n.of)) || n.args.some(readsIdentity);
        case "not": return readsIdentity(n.of);
        case "bin": return readsIdentity(n.l) || readsIdentity(n.r);
        case "cond": return readsIdentity(n.test) || readsIdentity(n.yes) || readsIdentity(n.no);
    }
}

/** `request.userInfo.username` or `request.userInfo.groups` (as fields or literal keys): which, or undefined. */
function userInfoField(n: Node): "username" | "groups" | undefined {
    const name = (x: Node) => (x.k === "select" ? x.field : x.k === "index" ? stringLit(x.key) : undefined);
    if (n.k !== "select" && n.k !== "index") return undefined;
    const of = n.of;
    if ((of.k !== "select" && of.k !== "index") || of.of.k !== "ident" || of.of.name !== "request" || name(of) !== "userInfo") return undefined;
    const field = name(n);
    return field === "username" || field === "groups" ? field : undefined;
}

const NONE: Principals = { users: [], groups: [] };
const join = (a: Principals | undefined, b: Principals | undefined): Principals | undefined =>
    a && b ? { users: [...a.users, ...b.users], groups: [...a.groups, ...b.groups] } : undefined;

/**
 * The principals whose requests alone a node's value can turn on, or undefined when that is not shown. With `falseOnly`
 * (P): whenever the node is false for a requester outside the result, it is false for every requester (its falsity does
 * not turn on who writes, except for those principals). Without (Q): the same of its truth. A node that does not read the
 * requester has both, with none; `a && b` and `a || b` have each when both sides have it (the union); `!a` swaps them;
 * `c ? a : b` with `c` not reading the requester has what both branches have. The atoms: `username != 'x'` has P with the
 * user x, `username == 'x'` and `username in ['x', ...]` have Q with those users, `'g' in groups` Q with the group g.
 * Anything else reading the requester has neither: unbounded.
 */
function principalsTurnedOn(n: Node, falseOnly: boolean): Principals | undefined {
    if (!readsIdentity(n)) return NONE;
    switch (n.k) {
        case "not": return principalsTurnedOn(n.of, !falseOnly);
        case "cond":
            return readsIdentity(n.test) ? undefined : join(principalsTurnedOn(n.yes, falseOnly), principalsTurnedOn(n.no, falseOnly));
        case "bin": {
            if (n.op === "&&" || n.op === "||") return join(principalsTurnedOn(n.l, falseOnly), principalsTurnedOn(n.r, falseOnly));
            const [field, other] = userInfoField(n.l) ? [userInfoField(n.l), n.r] : [userInfoField(n.r), n.l];
            if ((n.op === "==" || n.op === "!=") && field === "username" && stringLit(other) !== undefined) {
                return falseOnly === (n.op === "!=") ? { users: [stringLit(other)!], groups: [] } : undefined;
            }
            if (n.op === "in" && !falseOnly && userInfoField(n.l) === "username" && n.r.k === "list" && n.r.items.every((x) => stringLit(x) !== undefined)) {
                return { users: n.r.items.map((x) => stringLit(x)!), groups: [] };
            }
            if (n.op === "in" && !falseOnly && userInfoField(n.r) === "groups" && stringLit(n.l) !== undefined) {
                return { users: [], groups: [stringLit(n.l)!] };
            }
            return undefined;
        }
        default: return undefined;
    }
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
    const parsed = parse(expression);
    if (!parsed) return textReads(expression) || (/\bvariables\b/.test(expression) && textReads(Object.values(variables).join(" "))) ? { skips: undefined } : undefined;
    // An unread text that may read the requester stands as `request` whole: reading it, unbounded.
    const ast = inlineVariables(parsed, variables, (text) => (textReads(text) ? { k: "ident", name: "request" } : { k: "lit", v: UNKNOWN_VALUE }));
    if (!readsIdentity(ast)) return undefined;
    const skips = principalsTurnedOn(ast, true);
    return { skips: skips && { users: [...new Set(skips.users)].sort(), groups: [...new Set(skips.groups)].sort() } };
}
