/**
 * kit body-text.ts bodyTextIssue: a JSON body's declared charset (read by jshttp's content-type) and
 * its bytes. The servers' answers are in tests/hostile/session-63.test.ts and session-64.test.ts.
 */
import { describe, expect, it } from "vitest";
import { bodyTextIssue } from "../../services/src/kit/body-text";

describe("bodyTextIssue: a JSON body's charset and bytes", () => {
  const ascii = Buffer.from('{"a":"b"}');
  const issue = (type: string | undefined, body = ascii) => {
    const e = bodyTextIssue(type, body);
    return e && [e.statusCode, e.field];
  };
  it("UTF-8 and US-ASCII (its subset) in any spelling and case, quoted or not, are taken (session 63: US-ASCII was a 415)", () => {
    for (const type of [undefined, "application/json", "application/json; charset=utf-8", "application/json;charset=UTF8", "application/json; charset=us-ascii", 'application/json; charset="US-ASCII"', "application/json; CHARSET = ascii", "application/json; charset=ISO646-US", "application/json; charset=ANSI_X3.4-1968", "application/json; charset=csASCII", "application/json; charset=iso_646.irv:1991"])
      expect(issue(type), String(type)).toBeUndefined();
  });
  it("csUTF8, IANA's alias of UTF-8, in any case and quoted, is UTF-8 (a 415 until session 63); its bytes are still judged as UTF-8", () => {
    for (const type of ["application/json; charset=csUTF8", "application/json; charset=CSUTF8", "application/json; charset=csutf8", 'application/json; charset="csUTF8"'])
      expect(issue(type, Buffer.from('{"a":"Zo\u00eb"}')), type).toBeUndefined();
    expect(issue("application/json; charset=csUTF8", Buffer.from('{"a":"Zo\u00eb"}', "latin1"))).toEqual([400, "body"]);
    for (const type of ["application/json; charset=csutf-8", "application/json; charset=csUTF16", "application/json; charset=cs-utf8"]) expect(issue(type), type).toEqual([415, "content-type"]);
  });
  it("parameters are read whole: a charset inside another parameter's quoted value is none, a quoted-pair is its character", () => {
    expect(issue('application/json; profile="x;charset=latin1"')).toBeUndefined();
    expect(issue('application/json; profile="a \\" ;charset=latin1"; charset=utf-8')).toBeUndefined();
    expect(issue('application/json; charset="us\\-ascii"')).toBeUndefined();
    expect(issue('application/json; profile="x"; charset=latin1')).toEqual([415, "content-type"]);
    expect(issue('application/json; charset="utf-8')).toEqual([415, "content-type"]);
  });
  it("any other charset is a 415 naming content-type; a byte that is not ASCII in a body declared US-ASCII a 400 naming body", () => {
    for (const type of ["application/json; charset=latin1", "application/json; charset=iso-8859-1", "application/json; charset=utf-16", "application/json; charset=windows-1252", "application/json; charset=us-ascii-x", "application/json; charset=", "application/json; charset=\"\""])
      expect(issue(type), type).toEqual([415, "content-type"]);
    const zoe = Buffer.from('{"a":"Zo\u00eb"}');
    expect(issue("application/json; charset=us-ascii", zoe)).toEqual([400, "body"]);
    expect(issue("application/json; charset=us-ascii", Buffer.from('{"a":"Zo\u00eb"}', "latin1"))).toEqual([400, "body"]);
    expect(issue("application/json", zoe)).toBeUndefined();
  });
});

describe("bodyTextIssue: session 64 (jshttp's content-type, WHATWG's UTF-8 labels)", () => {
  const ascii = Buffer.from('{"a":"b"}');
  const zoe = Buffer.from('{"a":"Zo\u00eb"}');
  const issue = (type: string | undefined, body = ascii) => {
    const e = bodyTextIssue(type, body);
    return e && [e.statusCode, e.field];
  };
  it("every WHATWG label of UTF-8, in any case, quoted or not, is UTF-8 (all but utf-8 and utf8 were a 415); its bytes are still judged as UTF-8", () => {
    for (const label of ["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8", "utf8", "utf-8"])
      for (const spelt of [label, label.toUpperCase(), `"${label}"`]) {
        expect(issue(`application/json; charset=${spelt}`, zoe), spelt).toBeUndefined();
        expect(issue(`application/json; charset=${spelt}`, Buffer.from('{"a":"Zo\u00eb"}', "latin1")), spelt).toEqual([400, "body"]);
      }
  });
  it("US-ASCII stays US-ASCII, though WHATWG makes ascii and us-ascii labels of windows-1252: a byte above 0x7F is a 400 naming body", () => {
    for (const label of ["ascii", "us-ascii", "US-ASCII", '"ascii"']) {
      expect(issue(`application/json; charset=${label}`), label).toBeUndefined();
      expect(issue(`application/json; charset=${label}`, zoe), label).toEqual([400, "body"]);
    }
  });
  it("labels of other encodings, unknown labels and a label with white space around it are a 415 naming content-type", () => {
    for (const label of ["windows-1252", "latin1", "utf-16le", "unicode", "unicode-1-1-utf-7", "utf-7", "x-user-defined", "utf-8x", "utf_8", '" utf-8"', '"utf-8 "', '"\tutf8"', "\u00a0utf-8", "utf-8\u00a0", "cp65001"])
      expect(issue(`application/json; charset=${label}`), JSON.stringify(label)).toEqual([415, "content-type"]);
  });
  it("a quoted string never closed, in any parameter, is a 415 naming content-type (the library drops it and what follows)", () => {
    for (const type of ['application/json; charset="utf-8', 'application/json; profile="x', 'application/json; profile="x; charset=utf-8', 'application/json; charset=utf-8; profile="x', 'application/json; profile="x\\"', 'application/json; profile="x\\', 'application/json; charset="'])
      expect(issue(type), type).toEqual([415, "content-type"]);
    const e = bodyTextIssue('application/json; profile="x', ascii);
    expect(e?.message).toMatch(/quoted string in it is not closed/);
  });
  it("parameters as RFC 9110 §5.6.6 writes them: OWS around =, names in any case, the first of two charsets, anything after a closed quote up to ; ignored", () => {
    for (const type of ["application/json ; charset = utf-8 ", "application/json;\tcharset=\tutf-8\t", "application/json; Charset=UTF-8", "application/json; charset=utf-8; charset=latin1", 'application/json; charset="utf-8"x', "application/json; charset", "application/json;;; charset=utf-8", "application/json; =latin1", 'application/json; profile="a;b=\\"c\\""; charset=utf8'])
      expect(issue(type), type).toBeUndefined();
    for (const type of ["application/json; charset=latin1; charset=utf-8", "application/json; charset=utf-8 x", 'application/json; charset=utf"8', "application/json; charset=utf-8,latin1"])
      expect(issue(type), type).toEqual([415, "content-type"]);
  });
});
