/**
 * Session 65 (h9): policies/lib/cel-conditions.ts reads matchConditions with `@bufbuild/cel`'s parser (the cel-spec grammar)
 * in place of a hand-written tokenizer and parser. These are the texts the hand-written one could not read or read wrong:
 * raw, triple-quoted and bytes literals, escapes, unsigned integers, `!` binding tighter than `in`, comments, a field named
 * like a reserved word. The judgements are the same or stricter: a literal written with an escape is read for where a
 * condition applies, but bounds no exemption by identity (only a name written as it is read does).
 */
import { describe, expect, it } from "vitest";
import { identityReading, writesSkipped } from "../../policies/lib/cel-conditions";
import { NS } from "./fixtures";

const NAMESPACES = [{ name: NS, labels: { "pod-security.kubernetes.io/enforce": "restricted" } }];
const skipped = (expression: string) => writesSkipped(expression, NAMESPACES).map((w) => `${w.namespace.name} ${w.operation}`);
const EVERY = [`${NS} CREATE`, `${NS} UPDATE`];

describe("cel-conditions: where a match condition applies, read by the cel-spec grammar", () => {
    it.each([
        [`request.namespace != r'${NS}'`],
        [`request.namespace != R"${NS}"`],
        [`request.namespace != '''${NS}'''`],
        [`request.namespace != """${NS}"""`],
        ["request.namespace != 'ai\\u002dtrading'"],
        ["request.namespace != 'ai\\x2dtrading'"],
        ["request.namespace != 'ai\\055trading'"],
        ["b'ai-trading' == b'ai-trading' ? false : true"],
        ["1u == 2u"],
        ["!(1u == 1)"],
        ["-1 == -2"],
        ["1.5e3 != 1500.0 || false"],
        // A comment runs to the end of its line; what follows it is read.
        [`// skip the platform's namespace\nrequest.namespace != '${NS}'`],
        [`request.namespace != '${NS}' // request.userInfo is not read here\n`],
        // A comment ending the text without its newline, as the API server takes it.
        ["false // off for now"],
        [`request.namespace != '${NS}' // not ours`],
        // namespace and package are reserved words of CEL, but fields may be named so.
        [`object.metadata.namespace != '${NS}' || object.spec.package == 'x' && false`],
    ])("rejects %s, false for every write of the platform", (expression) => {
        expect(skipped(expression)).toEqual(EVERY);
    });

    it.each([
        // `!` binds tighter than `in`: `(!request.namespace) in [...]` is an error at the API server, not `!(... in ...)`.
        [`!request.namespace in ['${NS}']`],
        // The same namespace, spelled with escapes: true.
        ["request.namespace == 'ai\\u002dtrading'"],
        [`request.namespace == r'${NS}'`],
        // Bytes are not strings: an error or false by the CEL version, not judged.
        [`b'${NS}' == '${NS}'`],
        ["1u == 1"],
        // Not read here: map literals, macros, has(), optional syntax (the parser refuses it: not judged).
        [`{'ns': request.namespace}['ns'] != '${NS}'`],
        [`[request.namespace].all(n, n != '${NS}')`],
        ["has(request.namespace) && false || has(object.spec)"],
        [`object.?metadata.?namespace.orValue('') != '${NS}'`],
        // A reserved word is not a field name (`in`): refused by the parser, as by the API server.
        ["request.in != 'x'"],
    ])("passes %s (true, or not judged)", (expression) => {
        expect(skipped(expression)).toEqual([]);
    });

    it("reads a field through a key written with an escape, and a variable through one", () => {
        expect(skipped(`request['n\\x61mespace'] != '${NS}'`)).toEqual(EVERY);
        expect(writesSkipped("variables['n\\x73'] != 'ai-trading'", NAMESPACES, { ns: "request.namespace" })).toHaveLength(2);
    });
});

describe("cel-conditions: who a match condition exempts, read by the cel-spec grammar", () => {
    const users = (...u: string[]) => ({ skips: { users: u, groups: [] } });
    const UNBOUNDED = { skips: undefined };

    it.each([
        ["request.userInfo.username != r'ci-deployer'", users("ci-deployer")],
        ["request.userInfo.username != '''ci-deployer'''", users("ci-deployer")],
        ["!(request.userInfo.username in ['a', \"b\", r'c',])", users("a", "b", "c")],
        ["!('system:masters' in request.userInfo.groups)", { skips: { users: [], groups: ["system:masters"] } }],
        ["!!(request.userInfo.username != 'x')", users("x")],
        ["request.userInfo.username != 'x' // and no one else\n&& object.spec.package != 'y'", users("x")],
        ["request.userInfo.username != 'x' // a comment ending the text", users("x")],
        // Not bounded: a name written with an escape (the reviewed name must be the one in the text), a key so written.
        ["request.userInfo.username != 'ci\\u002ddeployer'", UNBOUNDED],
        ["request['user\\x49nfo'].username != 'x'", UNBOUNDED],
        ["request['n\\x61mespace'] != 'x'", UNBOUNDED],
        // `!` binds tighter than `in`: not the group exemption `!('system:masters' in groups)`.
        ["!'system:masters' in request.userInfo.groups", UNBOUNDED],
        ["has(request.userInfo.username)", UNBOUNDED],
        ["request.userInfo.groups.exists(g, g == 'ops')", UNBOUNDED],
        ["{'u': request.userInfo.username}['u'] != 'x'", UNBOUNDED],
        ["b'x' != request.userInfo.username", UNBOUNDED],
        // Refused by the parser, read by its text: it names userInfo, or request other than by a field that says nothing of the requester.
        ["request.userInfo.?username.orValue('') != 'x'", UNBOUNDED],
        ["request.in != 'x'", UNBOUNDED],
    ])("reads %s", (expression, reading) => {
        expect(identityReading(expression)).toEqual(reading);
    });

    it.each([
        ["has(request.namespace) && request.operation == 'CREATE'"],
        // A comment is not code: the requester it names is not read.
        ["request.namespace == 'ai-trading' // request.userInfo.username != 'x'\n"],
        ["object.metadata.name != r'userInfo'"],
    ])("finds %s does not read the requester", (expression) => {
        expect(identityReading(expression)).toBeUndefined();
    });

    it("reads a variable written with escapes as unknown, and bounds a variable's principal written as it is", () => {
        expect(identityReading("variables['us\\x65r'] != 'x'", { user: "request.userInfo.username" })).toEqual(UNBOUNDED);
        expect(identityReading("variables.user != r'x'", { user: "request.userInfo.username" })).toEqual(users("x"));
    });
});
