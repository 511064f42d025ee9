/**
 * central-hub's rules, no I/O: who may use it, the idempotency key's form, and the fleet view
 * (instances per service, their versions and health) over the catalog's services plus any unknown
 * service that registered.
 */
import { HttpError, type Identity } from "../../kit";
import type { Health, Instance } from "./registry";

/**
 * Who may use the hub: through the gateway (a request carries an identity) only admins, for reads as
 * for writes (instances name internal addresses, versions and metadata, locks their holders); peers
 * calling directly carry no identity (network policy trusts them).
 */
export function mayUseHub(identity: Identity | undefined): boolean {
  return !identity || identity.role === "admin";
}

// The platform's Idempotency-Key form (order-management, payment-service): it never contains the
// `|` that separates the fields of a lock's value.
const IDEMPOTENCY_KEY_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The Idempotency-Key header when present, checked; null when absent or empty (as order-management). */
export function idempotencyKeyOf(header: string | string[] | undefined): string | null {
  const key = typeof header === "string" && header.length > 0 ? header : null;
  if (key && !IDEMPOTENCY_KEY_RE.test(key)) throw new HttpError(400, "VALIDATION_ERROR", "Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]", "idempotency-key");
  return key;
}

export interface FleetEntry {
  service: string;
  inCatalog: boolean;
  instances: number;
  versions: Record<string, number>;
  health: Record<Health, number>;
}

export function fleetView(instances: Instance[], catalogServices: readonly string[], now = new Date()) {
  const byService = new Map<string, Instance[]>();
  for (const i of instances) byService.set(i.service, [...(byService.get(i.service) ?? []), i]);
  const known = new Set(catalogServices);
  const services: FleetEntry[] = [...new Set([...catalogServices, ...byService.keys()])].sort().map((name) => {
    const live = byService.get(name) ?? [];
    const versions: Record<string, number> = {};
    const health: Record<Health, number> = { healthy: 0, degraded: 0, unhealthy: 0 };
    for (const i of live) {
      versions[i.version] = (versions[i.version] ?? 0) + 1;
      health[i.health]++;
    }
    return { service: name, inCatalog: known.has(name), instances: live.length, versions, health };
  });
  return { generatedAt: now.toISOString(), instances: instances.length, services };
}
