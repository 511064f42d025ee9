import { BlockList, isIP } from "node:net";
import { CLOUD_METADATA_ADDRESSES } from "../../catalog/addresses";

/** The list is the catalog's (catalog/addresses.ts): the stack config refuses the addresses as the SMTP relay. */
export { CLOUD_METADATA_ADDRESSES };

/** `address/prefix` as a BlockList, or undefined when the text is no CIDR (a bare address counts as /32 or /128). */
function subnetOf(cidr: string): { list: BlockList; family: "ipv4" | "ipv6" } | undefined {
    const [address, bits, extra] = cidr.trim().split("/");
    const family = isIP(address);
    if (family === 0 || extra !== undefined || (bits !== undefined && !/^\d{1,3}$/.test(bits))) return undefined;
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (prefix > max) return undefined;
    const list = new BlockList();
    const type = family === 4 ? "ipv4" : "ipv6";
    list.addSubnet(address, prefix, type);
    return { list, family: type };
}

/** Whether the CIDR (or bare address) contains the address. */
export function cidrContains(cidr: string, address: string): boolean {
    const subnet = subnetOf(cidr);
    const family = isIP(address) === 4 ? "ipv4" : "ipv6";
    return subnet !== undefined && subnet.family === family && subnet.list.check(address, family);
}

/**
 * The metadata addresses an ipBlock (`cidr` minus `except`) lets through: a NetworkPolicy ipBlock of
 * `0.0.0.0/0` minus the private ranges still reaches 169.254.169.254 (link-local) and 100.100.100.200
 * (shared address space), neither of which is private by RFC 1918.
 */
export function metadataAddressesIn(cidr: string, except: readonly string[]): string[] {
    return CLOUD_METADATA_ADDRESSES.filter((a) => cidrContains(cidr, a) && !except.some((e) => cidrContains(e, a)));
}
