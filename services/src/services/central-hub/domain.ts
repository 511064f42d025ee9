/**
 * central-hub's rules, no I/O: who may use it, and the fleet view
 * (instances per service, their versions and health) over the catalog's services plus any unknown
 * service that registered.
 */
import type { Identity } from "../../kit";
import type { Health, Instance } from "./registry";

/**
 * Who may use the hub: through the gateway (a request carries an identity) only admins, for reads as
 * for writes (instances name internal addresses, versions and metadata, locks their holders); peers
 * calling directly carry no identity (network policy trusts them).
 */
export function mayUseHub(identity: Identity | undefined): boolean {
  return !identity || identity.role === "admin";
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
