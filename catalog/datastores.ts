/**
 * The one list of datastores. Services declare which of them they require or use (catalog/services.ts),
 * the stack switches them on and off (stacks/config.ts), components deploy them (components/data/),
 * the policy pack recognises them, and the services kit builds a client per entry.
 */

/** Datastores a service can depend on. `redpanda` is any Kafka-protocol broker. */
export const DATASTORES = ["postgres", "dragonfly", "clickhouse", "weaviate", "arangodb", "redpanda"] as const;
export type Datastore = (typeof DATASTORES)[number];

/**
 * Every stateful component a stack can switch on or off: the datastores plus the legacy Redis the
 * deployment guide keeps for compatibility (no service uses it).
 */
export const DATA_COMPONENTS = [...DATASTORES, "redis"] as const;
export type DataComponent = (typeof DATA_COMPONENTS)[number];

export function isDatastore(name: string): name is Datastore {
  return (DATASTORES as readonly string[]).includes(name);
}

export function isDataComponent(name: string): name is DataComponent {
  return (DATA_COMPONENTS as readonly string[]).includes(name);
}
