import { CLOUD_METADATA_ADDRESSES } from "../../catalog/addresses";
import { cidrRange, cidrRanges } from "./cidr";

/** The list is the catalog's (catalog/addresses.ts): the stack config refuses the addresses as the SMTP relay. */
export { CLOUD_METADATA_ADDRESSES };

/**
 * Whether the CIDR (or bare address) contains the address, read as the API server reads an ipBlock
 * (session 50: `0169.254.169.254/32` and `::ffff:169.254.169.254/128` hold 169.254.169.254; session 50b: `::/80`
 * holds it too; `lib/cidr.ts` `cidrRanges`).
 */
export function cidrContains(cidr: string, address: string): boolean {
    const at = cidrRange(address, true);
    return at !== undefined && cidrRanges(cidr, true).some((block) => block.family === at.family && block.start <= at.start && at.end <= block.end);
}

/**
 * The metadata addresses an ipBlock (`cidr` minus `except`) lets through: a NetworkPolicy ipBlock of
 * `0.0.0.0/0` minus the private ranges still reaches 169.254.169.254 (link-local) and 100.100.100.200
 * (shared address space), neither of which is private by RFC 1918.
 */
export function metadataAddressesIn(cidr: string, except: readonly string[]): string[] {
    return CLOUD_METADATA_ADDRESSES.filter((a) => cidrContains(cidr, a) && !except.some((e) => cidrContains(e, a)));
}
