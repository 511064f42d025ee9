/**
 * Scheduled logical backups, as the guide's backup strategy asks, on runtimes that schedule any
 * image (`backupsScheduled` in ../topology.ts: Kubernetes CronJobs; not Docker, whose scheduler is a
 * cron runner the datastore images do not carry, see README): `pg_dump` of
 * PostgreSQL and a per-table Native-format export of ClickHouse, each into its own volume with the
 * newest seven kept. Shipping the files off the cluster (object storage) is the operator's choice.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ContainerImage } from "../../stacks/images";
import { DB_NAME, DB_USER } from "./definitions";
import { backupJobName } from "../topology";
import { LABEL_BACKUP_OF, Runtime } from "../workload";

export type BackedUpStore = "postgres" | "clickhouse";

/** Shell run by the backup job; pure so the test can read it. Credentials come from env only. */
export function backupScript(store: BackedUpStore): string {
  const prune = "ls -1t /backups | tail -n +8 | while read -r old; do rm -rf \"/backups/$old\"; done";
  if (store === "postgres") {
    return [
      "set -eu",
      'stamp=$(date -u +%Y%m%dT%H%M%SZ)',
      `pg_dump --format=custom --no-owner -h postgres -U ${DB_USER} -d ${DB_NAME} -f "/backups/${DB_NAME}-$stamp.dump"`,
      prune,
    ].join("\n");
  }
  return [
    "set -eu",
    'stamp=$(date -u +%Y%m%dT%H%M%SZ)',
    'dir="/backups/$stamp"',
    'mkdir -p "$dir"',
    `ch() { clickhouse-client --host clickhouse --user ${DB_USER} --database ${DB_NAME} "$@"; }`,
    'for t in $(ch --query "SHOW TABLES"); do',
    '  ch --query "SHOW CREATE TABLE $t FORMAT TSVRaw" > "$dir/$t.sql"',
    '  ch --query "SELECT * FROM $t FORMAT Native" > "$dir/$t.native"',
    "done",
    prune,
  ].join("\n");
}

export interface BackupArgs {
  runtime: Runtime;
  store: BackedUpStore;
  /** Same image as the store, so client and server versions match; runs as the image's user. */
  image: ContainerImage;
  password: pulumi.Output<string>;
  schedule: string;
  storageGi: number;
  dependsOn: pulumi.Resource[];
}

export class Backup extends pulumi.ComponentResource {
  constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:Backup", name, {}, opts);
    const uid = args.image.user?.uid;
    if (uid === undefined) throw new pulumi.ResourceError(`${name}: the ${args.store} image ${args.image.ref} names no user to run the backup as (stacks/images.ts)`, this);
    const secretEnv: Record<string, pulumi.Input<string>> =
      args.store === "postgres" ? { PGPASSWORD: args.password } : { CLICKHOUSE_PASSWORD: args.password };
    args.runtime.schedule(
      {
        name: backupJobName(args.store),
        role: "job",
        kind: "job",
        schedule: args.schedule,
        image: args.image.ref,
        command: ["sh", "-c", backupScript(args.store)],
        env: {},
        secretEnv,
        ports: [],
        volumes: [{ name: "backups", mountPath: "/backups", sizeGi: args.storageGi }],
        files: [],
        resources: { cpu: "500m", memory: "512Mi" },
        replicas: 1,
        security: { runAsUser: uid, runAsGroup: uid, fsGroup: uid, readOnlyRootFilesystem: true, scratchDirs: ["/tmp"] },
        connectsTo: [args.store],
        acceptsFrom: [],
        labels: { [LABEL_BACKUP_OF]: args.store },
        dependsOn: args.dependsOn,
      },
      this,
    );
    this.registerOutputs({});
  }
}
