/**
 * Who talks to whom, derived from the service catalog and the stack's switches. Both the network
 * policies (Kubernetes) and start order use it, so it is computed once, as a pure function.
 */
import { entryPoint, scheduledJobName, ServiceDefinition, traceCollector } from "../catalog";
import { DataComponent, StackConfig, dataComponents } from "../stacks/config";
import { canSchedule, INGRESS_CONTROLLER, RuntimeCapabilities } from "./workload";

export interface Topology {
  /** Workload -> workloads it connects to. */
  connectsTo: Record<string, string[]>;
  /** Workload -> workloads allowed to connect to it (the inverse, plus external entry points). */
  acceptsFrom: Record<string, string[]>;
  /** Datastores enabled in this stack. */
  datastores: DataComponent[];
}

export const EDGE = "nginx";
export const PROMETHEUS = "prometheus";
export const GRAFANA = "grafana";
export const migrationJobName = (service: string) => `${service}-migrate`;
export const backupJobName = (store: string) => `${store}-backup`;
/** Workload name of a service's scheduled job, e.g. ml-predictor-retrain (catalog/services.ts: also its runs' key). */
export { scheduledJobName };
/** Datastores that get a scheduled backup where the runtime schedules jobs. */
export const backedUp: readonly DataComponent[] = ["postgres", "clickhouse"];

/**
 * Whether the stack runs the scheduled backups: a deliberate decision, not a side effect. A backup
 * runs in the datastore's own image (pg_dump / clickhouse-client of exactly the server's version),
 * which carries no cron runner, so it is scheduled only where the runtime schedules any image
 * (Kubernetes CronJobs). Docker's scheduler is the cron runner inside the job's image: there the
 * backups stay a documented `docker exec` command (README) rather than run in an image whose
 * client may not match the server.
 */
export function backupsScheduled(runtime: RuntimeCapabilities): boolean {
  return canSchedule(runtime, { cronRunner: undefined });
}

/**
 * Backups whose runs are recorded in PostgreSQL's scheduled_job_runs (database-service exports them,
 * catalog `exportsJobRuns`; the per-job alerts watch them): the scheduled backups of the enabled
 * stores, where PostgreSQL is deployed: through a run recorder, a second container of the backup's pod
 * from the PostgreSQL image (data/backup.ts), where the runtime runs one; without, the PostgreSQL
 * backup writes its row with psql itself and the ClickHouse one is not recorded.
 */
export function recordedBackups(runtime: RuntimeCapabilities, datastores: readonly DataComponent[]): DataComponent[] {
  if (!backupsScheduled(runtime) || !datastores.includes("postgres")) return [];
  return backedUp.filter((store) => datastores.includes(store) && (store === "postgres" || runtime.jobCompanions));
}

/** Datastores a service actually uses in this stack: required ones plus enabled optional ones. */
export function serviceDatastores(service: ServiceDefinition, enabled: readonly DataComponent[]): DataComponent[] {
  return [...service.requires, ...service.optional.filter((d) => enabled.includes(d))];
}

export function buildTopology(config: StackConfig, runtime: RuntimeCapabilities): Topology {
  const datastores = dataComponents.filter((d) => config.datastores[d].enabled);
  const deployed = new Set(config.services.map((s) => s.name));
  const connectsTo: Record<string, string[]> = {};
  const add = (from: string, to: string) => {
    (connectsTo[from] ??= []).includes(to) || connectsTo[from].push(to);
  };

  for (const service of config.services) {
    connectsTo[service.name] ??= [];
    for (const store of serviceDatastores(service, datastores)) add(service.name, store);
    for (const peer of service.calls) if (deployed.has(peer)) add(service.name, peer);
    if (service.preDeployJob) {
      for (const store of serviceDatastores(service, datastores)) add(migrationJobName(service.name), store);
    }
    // A service's scheduled job runs in the services image (or the trainer built on it), which
    // carries the cron runner: any runtime that schedules jobs runs it.
    if (service.scheduledJob && runtime.scheduledJobs) {
      for (const store of serviceDatastores(service, datastores)) add(scheduledJobName(service.name, service.scheduledJob.name), store);
    }
  }
  // Every service exports its spans to the trace collector.
  const collector = traceCollector(config.services);
  if (collector) for (const service of config.services) if (service.name !== collector.name) add(service.name, collector.name);
  if (backupsScheduled(runtime)) {
    for (const store of backedUp) if (datastores.includes(store)) add(backupJobName(store), store);
    // A backup recorded writes to PostgreSQL from its pod (its run recorder, or the PostgreSQL backup itself).
    for (const store of recordedBackups(runtime, datastores)) add(backupJobName(store), "postgres");
  }
  if (config.monitoring.prometheus) {
    for (const service of config.services) add(PROMETHEUS, service.name);
    if (config.monitoring.grafana) add(GRAFANA, PROMETHEUS);
  }
  const entry = entryPoint(config.services);
  if (entry && runtime.edge === "proxy-workload") add(EDGE, entry.name);

  const acceptsFrom: Record<string, string[]> = {};
  for (const [from, targets] of Object.entries(connectsTo)) {
    for (const to of targets) (acceptsFrom[to] ??= []).push(from);
  }
  // With an ingress controller it is the edge; otherwise our proxy workload (above) is.
  if (entry && runtime.edge === "ingress-controller") {
    (acceptsFrom[entry.name] ??= []).push(INGRESS_CONTROLLER);
  }
  for (const list of Object.values(acceptsFrom)) list.sort();
  for (const list of Object.values(connectsTo)) list.sort();
  return { connectsTo, acceptsFrom, datastores };
}
