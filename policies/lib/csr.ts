/**
 * The names a PKCS#10 certificate signing request (a cert-manager CertificateRequest's `spec.request`)
 * asks for: its subject's common names and its subjectAltName extension's DNS names and IP addresses.
 * Session 45.
 *
 * Why DER is read here by hand: `node:crypto` reads certificates (`X509Certificate`, which refuses a
 * CSR: another ASN.1 structure) and SPKAC, never PKCS#10; no ASN.1 or X.509 library (asn1js, pkijs,
 * @peculiar/x509, node-forge, jsrsasign) is in any lockfile of the repo, and the pack's package.json is
 * not to grow for this. The reader below walks the few structures RFC 2986 and RFC 5280 fix for these
 * fields (definite lengths, single-byte tags, as DER requires) and throws on anything else, which the
 * caller reports as an unreadable request; it never judges a signature (the CA does).
 */
import { isIP } from "node:net";

interface Tlv { tag: number; start: number; end: number; next: number }

/** The DER element at `pos`: tag, content range, and where the next element starts. */
function tlv(der: Buffer, pos: number, limit = der.length): Tlv {
    if (pos + 2 > limit) throw new Error("truncated element");
    const tag = der[pos];
    if ((tag & 0x1f) === 0x1f) throw new Error("multi-byte tag");
    let len = der[pos + 1];
    let start = pos + 2;
    if (len & 0x80) {
        const bytes = len & 0x7f;
        if (bytes === 0 || bytes > 4 || start + bytes > limit) throw new Error("bad length");
        len = 0;
        for (let i = 0; i < bytes; i++) len = len * 256 + der[start + i];
        start += bytes;
    }
    if (start + len > limit) throw new Error("element overruns its parent");
    return { tag, start, end: start + len, next: start + len };
}

/** The elements inside a constructed element. */
function children(der: Buffer, parent: Tlv): Tlv[] {
    const out: Tlv[] = [];
    for (let pos = parent.start; pos < parent.end;) {
        const c = tlv(der, pos, parent.end);
        out.push(c);
        pos = c.next;
    }
    return out;
}

function want(t: Tlv | undefined, tag: number, what: string): Tlv {
    if (!t || t.tag !== tag) throw new Error(`expected ${what}`);
    return t;
}

const hex = (der: Buffer, t: Tlv) => der.subarray(t.start, t.end).toString("hex");
const OID_CN = "550403"; // 2.5.4.3 commonName
const OID_EXTENSION_REQUEST = "2a864886f70d01090e"; // 1.2.840.113549.1.9.14
const OID_SAN = "551d11"; // 2.5.29.17 subjectAltName

/** A directory string (UTF8String, PrintableString, IA5String, T61String, BMPString) as text. */
function text(der: Buffer, t: Tlv): string {
    const bytes = der.subarray(t.start, t.end);
    if (t.tag === 0x1e) return Buffer.from(bytes).swap16().toString("utf16le");
    if ([0x0c, 0x13, 0x16, 0x14].includes(t.tag)) return bytes.toString(t.tag === 0x0c ? "utf8" : "latin1");
    throw new Error(`unexpected string tag 0x${t.tag.toString(16)}`);
}

/** An iPAddress entry (4 or 16 octets) as text, IPv6 in its short form. */
function address(bytes: Buffer): string {
    if (bytes.length === 4) return [...bytes].join(".");
    if (bytes.length !== 16) throw new Error("iPAddress of neither 4 nor 16 octets");
    const groups = [...Array(8).keys()].map((i) => bytes.readUInt16BE(i * 2).toString(16)).join(":");
    const short = new URL(`http://[${groups}]/`).hostname.replace(/^\[|\]$/g, "");
    if (isIP(short) !== 6) throw new Error("bad IPv6 address");
    return short;
}

/** The DER bytes of a CSR given as PEM, base64 of PEM (Kubernetes' encoding of `spec.request`), or base64 of DER. */
export function csrDer(request: string): Buffer {
    const pem = (s: string) => /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(s);
    const direct = pem(request);
    if (direct) return Buffer.from(direct[2].replace(/\s+/g, ""), "base64");
    const decoded = Buffer.from(request.replace(/\s+/g, ""), "base64");
    const inner = pem(decoded.toString("latin1"));
    return inner ? Buffer.from(inner[2].replace(/\s+/g, ""), "base64") : decoded;
}

/** The subject common names, SAN DNS names and SAN IP addresses a CSR asks for; throws on a request it cannot read. */
export function csrNames(request: string): string[] {
    const der = csrDer(request);
    const top = want(tlv(der, 0), 0x30, "CertificationRequest");
    if (top.next !== der.length) throw new Error("trailing bytes");
    const info = want(children(der, top)[0], 0x30, "CertificationRequestInfo");
    const [version, subject, spki, attributes] = children(der, info);
    want(version, 0x02, "version");
    want(subject, 0x30, "subject");
    want(spki, 0x30, "subjectPKInfo");
    const names: string[] = [];
    for (const rdn of children(der, subject)) {
        for (const atv of children(der, want(rdn, 0x31, "RelativeDistinguishedName"))) {
            const [oid, value] = children(der, want(atv, 0x30, "AttributeTypeAndValue"));
            if (hex(der, want(oid, 0x06, "attribute type")) === OID_CN) names.push(text(der, value));
        }
    }
    for (const attr of attributes ? children(der, want(attributes, 0xa0, "attributes")) : []) {
        const [oid, values] = children(der, want(attr, 0x30, "Attribute"));
        if (hex(der, want(oid, 0x06, "attribute type")) !== OID_EXTENSION_REQUEST) continue;
        for (const exts of children(der, want(values, 0x31, "attribute values"))) {
            for (const ext of children(der, want(exts, 0x30, "Extensions"))) {
                const parts = children(der, want(ext, 0x30, "Extension"));
                if (hex(der, want(parts[0], 0x06, "extnID")) !== OID_SAN) continue;
                const value = want(parts[parts.length - 1], 0x04, "extnValue");
                const generalNames = want(tlv(der, value.start, value.end), 0x30, "GeneralNames");
                for (const gn of children(der, generalNames)) {
                    if (gn.tag === 0x82) names.push(der.subarray(gn.start, gn.end).toString("latin1"));
                    else if (gn.tag === 0x87) names.push(address(der.subarray(gn.start, gn.end)));
                }
            }
        }
    }
    return names;
}
