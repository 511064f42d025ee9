/**
 * Datastore components: one class per store with its own type token, sharing the mechanics of
 * turning a definition into a workload on whichever runtime the stack targets.
 */
import * as pulumi from "@pulumi/pulumi";
import { unpinnedReason } from "../../catalog/images";
import { DataComponent } from "../../stacks/config";
import { DeployedWorkload, Runtime } from "../workload";
import { datastoreDefinition, DatastoreContext } from "./definitions";

/** The definition's context minus the store's own name (each class knows it), plus the runtime. */
export interface DatastoreArgs extends Omit<DatastoreContext, "name"> {
  runtime: Runtime;
  replicas?: number;
}

export abstract class Datastore extends pulumi.ComponentResource {
  /** Connection string for operators; always a secret output. */
  readonly connectionString: pulumi.Output<string>;
  readonly host: string;
  readonly port: number;
  readonly clientEnv: Record<string, pulumi.Input<string>>;
  readonly clientSecretEnv: Record<string, pulumi.Input<string>>;
  readonly workload: DeployedWorkload;

  protected constructor(type: string, kind: DataComponent, name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super(type, name, {}, opts);
    if (args.storageGi < 1) throw new pulumi.ResourceError(`${name}: storageGi must be at least 1`, this);
    if (args.memoryGi !== undefined && !(Number.isInteger(args.memoryGi) && args.memoryGi >= 1)) throw new pulumi.ResourceError(`${name}: memoryGi must be a whole number of GiB, at least 1`, this);
    // The stack config refuses an unpinned override first; this guards every other caller, by the
    // same definition as the config and the policy pack (catalog/images.ts).
    const ref = args.image.ref;
    const unpinned = ref ? unpinnedReason(ref) : "is empty";
    if (unpinned !== undefined) {
      throw new pulumi.ResourceError(`${name}: image '${ref}' ${unpinned}: it must be pinned to a version tag or a digest (name@sha256:...)`, this);
    }
    const { runtime, replicas, ...context } = args;
    const ctx: DatastoreContext = { ...context, name: kind };
    const def = datastoreDefinition(ctx);
    this.workload = runtime.deploy(
      { ...def.spec, replicas: replicas ?? 1, acceptsFrom: args.acceptsFrom, connectsTo: [] },
      this,
    );
    this.host = this.workload.host;
    this.port = def.port;
    this.clientEnv = def.clientEnv;
    this.clientSecretEnv = def.clientSecretEnv;
    this.connectionString = pulumi.secret(def.connectionString);
    this.registerOutputs({ host: this.host, port: this.port, connectionString: this.connectionString });
  }
}

export class Postgres extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:Postgres", "postgres", name, args, opts);
  }
}
export class Dragonfly extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:Dragonfly", "dragonfly", name, args, opts);
  }
}
export class ClickHouse extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:ClickHouse", "clickhouse", name, args, opts);
  }
}
export class Weaviate extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:Weaviate", "weaviate", name, args, opts);
  }
}
export class ArangoDB extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:ArangoDB", "arangodb", name, args, opts);
  }
}
export class Redpanda extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:Redpanda", "redpanda", name, args, opts);
  }
}
export class LegacyRedis extends Datastore {
  constructor(name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:LegacyRedis", "redis", name, args, opts);
  }
}

export const datastoreClasses: Record<DataComponent, new (name: string, args: DatastoreArgs, opts?: pulumi.ComponentResourceOptions) => Datastore> = {
  postgres: Postgres,
  dragonfly: Dragonfly,
  clickhouse: ClickHouse,
  weaviate: Weaviate,
  arangodb: ArangoDB,
  redpanda: Redpanda,
  redis: LegacyRedis,
};
