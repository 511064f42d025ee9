/**
 * Headers on every answer of the gateway, the platform's public entry on both targets: defined in the
 * catalog (catalog/edge.ts SECURITY_HEADERS, with why), which the policy pack reads too (an edge
 * removing one is refused by edge-gateway-contract).
 */
export { SECURITY_HEADERS } from "../../catalog";
