/**
 * The label contract between the program and the pack: the names the components put on every
 * workload and the policies key on. (Moves to the shared catalog module once it exists.)
 */
export const LABEL_WORKLOAD = "trading.io/workload";
export const LABEL_ROLE = "trading.io/role";
export const LABEL_BACKUP_OF = "trading.io/backup-of";
export const LABEL_PROMETHEUS_RULES = "trading.io/prometheus-rules";
/** A service that must never run twice (per-process state); the program gives it Recreate rollouts. */
export const LABEL_SINGLETON = "trading.io/singleton";

export const ROLES = ["datastore", "service", "job", "monitoring", "edge"] as const;
export type Role = (typeof ROLES)[number];
