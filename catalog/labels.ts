/**
 * Label names shared by the components (which set them on every container, pod and object) and the
 * policy pack (which reads them). Docker labels and Kubernetes labels use the same keys.
 */

/** The workload's name (container alias / Kubernetes Service name). Selectors match on it. */
export const LABEL_WORKLOAD = "trading.io/workload";
/** What the workload is: one of WORKLOAD_ROLES. */
export const LABEL_ROLE = "trading.io/role";
/** On a backup job: the datastore it backs up. */
export const LABEL_BACKUP_OF = "trading.io/backup-of";
/** On the ConfigMap (Kubernetes) or container (Docker) carrying Prometheus alert rules. */
export const LABEL_PROMETHEUS_RULES = "trading.io/prometheus-rules";
/** A service that must never run twice at once (its state or its subscription is per process). */
export const LABEL_SINGLETON = "trading.io/singleton";
/** Standard Kubernetes labels, also set on Docker containers. */
export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_PART_OF = "app.kubernetes.io/part-of";
/** Value of LABEL_PART_OF on everything the platform creates. */
export const PART_OF = "ai-trading";

export const WORKLOAD_ROLES = ["datastore", "service", "job", "monitoring", "edge"] as const;
export type WorkloadRole = (typeof WORKLOAD_ROLES)[number];

/**
 * On a Docker container: where the Pulumi state that deployed it lives (stacks/state-location.ts),
 * so that `npm run up`'s check (scripts/lib/host-ports.ts) tells this clone's containers from those a
 * second clone deployed under the same names.
 */
export const LABEL_PULUMI_STATE = "trading.io/pulumi-state";
