/**
 * The names a PKCS#10 certificate signing request (a cert-manager CertificateRequest's `spec.request`)
 * asks for: its subject's common names and its subjectAltName extension's DNS names and IP addresses.
 * Session 45.
 *
 * `node:crypto` reads certificates (`X509Certificate` refuses a CSR: another ASN.1 structure), never
 * PKCS#10, so the request is decoded by PeculiarVentures' ASN.1 schemas (`@peculiar/asn1-csr` for
 * RFC 2986, `@peculiar/asn1-x509` for the RFC 5280 structures inside it). The signature is never judged
 * (the CA does); a request the schemas refuse throws, which the caller reports as unreadable.
 */
import { isIP } from "node:net";
import { fromBER } from "asn1js";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Extensions, SubjectAlternativeName, id_ce_subjectAltName } from "@peculiar/asn1-x509";

const OID_COMMON_NAME = "2.5.4.3";
/** PKCS#9 extensionRequest: the attribute that carries the extensions a CSR asks for. */
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

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
    // The schemas read the first structure and ignore what follows it; cert-manager's reader (Go's
    // x509.ParseCertificateRequest) refuses trailing data, so a request with any is one the pack cannot
    // read either (session 46).
    const outer = fromBER(new Uint8Array(der));
    if (outer.offset !== der.byteLength) throw new Error(`${der.byteLength - Math.max(outer.offset, 0)} bytes after the request's DER structure`);
    const info = AsnConvert.parse(der, CertificationRequest).certificationRequestInfo;
    const names: string[] = [];
    for (const rdn of info.subject) {
        for (const atv of rdn) {
            if (atv.type !== OID_COMMON_NAME) continue;
            // A common name in a type other than the directory strings (anyValue) is not a name the pack can judge.
            if (atv.value.anyValue) throw new Error("a common name that is not a directory string");
            names.push(atv.value.toString());
        }
    }
    for (const attribute of info.attributes ?? []) {
        if (attribute.type !== OID_EXTENSION_REQUEST) continue;
        for (const value of attribute.values) {
            for (const extension of AsnConvert.parse(value, Extensions)) {
                if (extension.extnID !== id_ce_subjectAltName) continue;
                for (const name of AsnConvert.parse(extension.extnValue, SubjectAlternativeName)) {
                    if (name.dNSName !== undefined) names.push(name.dNSName);
                    else if (name.iPAddress !== undefined) names.push(address(name.iPAddress));
                }
            }
        }
    }
    return names;
}

/** An iPAddress entry as the schema renders it, checked and in Node's short form (IPv6 compressed). */
function address(text: string): string {
    const family = isIP(text);
    if (family === 0) throw new Error(`iPAddress ${JSON.stringify(text)} is not an address`);
    return family === 6 ? new URL(`http://[${text}]/`).hostname.replace(/^\[|\]$/g, "") : text;
}
