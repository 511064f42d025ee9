/**
 * Scheduled logical backups, as the guide's backup strategy asks, on runtimes that schedule any
 * image (`backupsScheduled` in ../topology.ts: Kubernetes CronJobs; not Docker, whose scheduler is a
 * cron runner the datastore images do not carry, see README): `pg_dump` of
 * PostgreSQL and a per-table Native-format export of ClickHouse, each into its own volume with the
 * newest seven kept. Shipping the files off the cluster (object storage) is the operator's choice.
 * A ClickHouse backup is `<stamp>/tables/<t>.sql` + `<t>.native` per table and `<stamp>/views/<v>.sql`
 * per view (plain or materialized, CREATE only); a restore creates and loads the tables, then creates
 * the views (README, "Backups").
 * Both record their runs in PostgreSQL's scheduled_job_runs (database-service exports them, the per-job
 * alerts watch them) through a run recorder container beside the backup (backupRunRecorderScript
 * says why) where the runtime runs one (`jobCompanions`: Kubernetes); elsewhere the PostgreSQL backup
 * records its own run with psql (PostgresRecording says why not both).
 */
import * as pulumi from "@pulumi/pulumi";
import type { ContainerImage } from "../../stacks/images";
import { DB_NAME, DB_USER } from "./definitions";
import { backupJobName } from "../topology";
import { LABEL_BACKUP_OF, Runtime } from "../workload";

export type BackedUpStore = "postgres" | "clickhouse";

/** ClickHouse engines of views (system.tables.engine): their CREATE is saved, never their rows. */
const VIEW_ENGINES = "'View', 'MaterializedView'";

/** The server a ClickHouse backup or restore talks to (native protocol): the cluster's by default. */
export interface ClickHouseConnection {
  host: string;
  port: number;
  user: string;
  database: string;
}
export const CLUSTER_CLICKHOUSE: ClickHouseConnection = { host: "clickhouse", port: 9000, user: DB_USER, database: DB_NAME };

/** The job's scratch directory in the shell, as mktemp picks it: $TMPDIR, else /tmp (an emptyDir of the backup's pod). */
const SCRATCH = "${TMPDIR:-/tmp}";

/**
 * The ClickHouse backup's client directory in SCRATCH, `<prefix>` and mktemp's six random characters:
 * a name of its own, so that each run first removes what a run killed outright (SIGKILL, out of
 * memory: no trap runs) left there, its client config holding the password. Such a leftover does
 * outlive its run where the backup has no run recorder (PostgreSQL not deployed): its pod restarts a
 * failed container in place (restartPolicy OnFailure, runtime/kubernetes/scheduling.ts), and the
 * retry finds the same emptyDir. Not mktemp's default name: a restore run by hand in the same
 * scratch (clickhouseRestoreScript) keeps that, so a backup never removes a live restore's directory.
 */
const BACKUP_CLIENT_DIR_PREFIX = "clickhouse-backup-client.";

const shellQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Shell lines giving the script a `ch` function running clickhouse-client as `conn.user` with the
 * password of `$CLICKHOUSE_PASSWORD`, and `ch_exec`, the same replacing its shell (backupScript's
 * exports). Not `--password` (any user of the node reads a process's arguments in
 * /proc/<pid>/cmdline), and not the variable itself: the 18.16 client of the offline
 * stand-in never reads it (24.8's does). Both read `<user>` and `<password>` from a `--config-file`,
 * so the password is written, XML-escaped, to a file of mode 0600 in a private directory (under
 * $TMPDIR or /tmp, the job's scratch directory; named after `dirTemplate` there when given, else
 * mktemp's default name) removed when the script exits. `printf` is the shell's builtin and sed
 * reads the value from its stdin, so it is on no command line on the way either.
 */
function clickhouseClientSetup(conn: ClickHouseConnection, { traps = "own", dirTemplate }: { traps?: "own" | "caller's"; dirTemplate?: string } = {}): string[] {
  const client = `clickhouse-client --config-file "$client_dir/client.xml" --host ${shellQuote(conn.host)} --port ${conn.port} --database ${shellQuote(conn.database)} "$@"`;
  return [
    ': "${CLICKHOUSE_PASSWORD:?is not set}"',
    `client_dir=$(mktemp -d${dirTemplate === undefined ? "" : ` "${SCRATCH}/${dirTemplate}"`})`,
    // "caller's": the script's own EXIT trap removes $client_dir (the backup's, which also reports its outcome).
    ...(traps === "own"
      ? [
          "trap 'rm -rf \"$client_dir\"' EXIT",
          // A signal ends the script through exit, so the EXIT trap still removes the file.
          "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
        ]
      : []),
    "(",
    "  umask 077",
    "  {",
    `    printf '%s' ${shellQuote(`<config><user>${xmlEscape(conn.user)}</user><password>`)}`,
    // Piped, not $(...), which would drop the password's trailing newlines.
    `    printf '%s' "$CLICKHOUSE_PASSWORD" | sed -e 's/&/\\&amp;/g' -e 's/</\\&lt;/g' -e 's/>/\\&gt;/g'`,
    "    printf '%s\\n' '</password></config>'",
    '  } > "$client_dir/client.xml"',
    ")",
    `ch() { ${client}; }`,
    // The client replacing the (background) subshell it runs in, so that $! is the client itself.
    `ch_exec() { exec ${client}; }`,
  ];
}

/** The PostgreSQL a backup dumps and records its run in: the cluster's by default. */
export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  database: string;
}
export const CLUSTER_POSTGRES: PostgresConnection = { host: "postgres", port: 5432, user: DB_USER, database: DB_NAME };

/** Bound on each bookkeeping statement of the PostgreSQL backup (ms), and on its connection (s). */
const RECORD_STATEMENT_TIMEOUT_MS = 10_000;
const RECORD_CONNECT_TIMEOUT_S = 10;

/**
 * Shell lines recording the PostgreSQL backup's run in scheduled_job_runs (migration 0396), as the
 * kit's runRecorded does for a service's job, under the CronJob's name (`postgres-backup`), which
 * database-service exports and the per-job alerts select: `record_start`, `record_success`, and a
 * failure from the EXIT trap, coded `EXIT_<n>` or by the signal that stopped the run, as received:
 * at its time limit `SIGINT`, the PostgreSQL images' STOPSIGNAL, which containerd and CRI-O send
 * (`SIGTERM` from a runtime or a person sending that). psql reads PGPASSWORD; the SQL holds only the
 * job's name and that code. A write that fails (PostgreSQL down: the dump failed too) is reported on
 * stderr and never changes the exit status.
 */
function postgresRunRecording(pg: PostgresConnection, job: string): string[] {
  const psql = `PGCONNECT_TIMEOUT=${RECORD_CONNECT_TIMEOUT_S} psql -X -q -v ON_ERROR_STOP=1 -h ${shellQuote(pg.host)} -p ${pg.port} -U ${shellQuote(pg.user)} -d ${shellQuote(pg.database)} -c 'SET statement_timeout = ${RECORD_STATEMENT_TIMEOUT_MS}'`;
  const upsert = (columns: string, values: string) =>
    `INSERT INTO scheduled_job_runs (job, ${columns}) VALUES ('${job}', ${values}) ON CONFLICT (job) DO UPDATE SET ${columns
      .split(", ")
      .map((c) => `${c} = excluded.${c}`)
      .join(", ")}`;
  return [
    `record() { ${psql} -c "$1" > /dev/null || echo "could not record the run of ${job} in scheduled_job_runs ($2); the backup's own outcome stands" >&2; }`,
    `record_start() { record ${shellQuote(upsert("last_started_at", "statement_timestamp()"))} start; }`,
    `record_success() { record ${shellQuote(upsert("last_succeeded_at", "statement_timestamp()"))} success; }`,
    // The code is EXIT_<digits> or SIG<letters>: it matches the table's CHECK and is safe in the SQL.
    `record_failure() { record "${upsert("last_failed_at, last_failure_code", "statement_timestamp(), '$1'").replace(/"/g, '\\"')}" failure; }`,
  ];
}

/**
 * Where a backup with a run recorder leaves its run's outcome for it (a directory both containers
 * of the run's pod mount, JobCompanionSpec.sharedDir): one line, `SUCCESS` or the failure's code
 * (`EXIT_<n>`, `SIG<name>`), renamed into place whole.
 */
export const RUN_OUTCOME_DIR = "/run-outcome";
const RUN_OUTCOME_FILE = `${RUN_OUTCOME_DIR}/outcome`;

/**
 * Shell lines giving a backup with a run recorder `report_outcome <code>`: the run's outcome written for its
 * recorder, where the directory exists (a run with no recorder, e.g. by hand, writes nothing). A
 * write that fails is reported on stderr and never changes the exit status (the recorder then records
 * BACKUP_STOPPED_WITHOUT_OUTCOME once the heartbeat, stopped with the shell, has gone stale).
 */
function outcomeReporting(): string[] {
  return [
    `report_outcome() { [ -d ${shellQuote(RUN_OUTCOME_DIR)} ] || return 0; { printf '%s\\n' "$1" > ${shellQuote(`${RUN_OUTCOME_FILE}.partial`)} && mv -f ${shellQuote(`${RUN_OUTCOME_FILE}.partial`)} ${shellQuote(RUN_OUTCOME_FILE)}; } 2>/dev/null || echo "could not write the run's outcome ($1) for its recorder" >&2; }`,
  ];
}

/**
 * The backup's heartbeat, for its recorder: while the backup's shell lives, a background loop of
 * its own rewrites RUN_HEARTBEAT_FILE (a counter, renamed into place whole) every `intervalSeconds`;
 * the recorder, reading it every second, takes a file unchanged (or never written) for
 * `staleAfterSeconds` for a backup container that stopped without writing its outcome (SIGKILL, an
 * out-of-memory kill of its shell, its container gone), and records that failure then instead of at
 * the run's time limit. The loop is the shell's child: it dies with its container (its shell is
 * PID 1, whose end kills the rest of the container) and ends by itself once its shell is gone
 * elsewhere (a run by hand). It beats apart from the exports and pg_dump, so a slow export or dump,
 * however long, keeps it fresh.
 */
export interface BackupHeartbeat {
  intervalSeconds: number;
  staleAfterSeconds: number;
}

/**
 * Production bounds. A beat every 10 s costs one `sleep` and one `mv` per beat. Stale after 90 s:
 * nine beats missed in a row, far beyond what a live shell misses when its container is CPU-throttled
 * (500m: throttled per 100 ms period) or a write into the emptyDir stalls for seconds on a busy node's
 * disk, since a wrong verdict would record a failure for a run that then succeeds; and still
 * minutes, not the 3 h time limit, after a backup died. The recorder counts whole seconds of its own
 * sleeps, so the bound is a lower one, and it counts from its own start too (a backup that never
 * beat): the pod's containers start in their order, the backup's first, its first beat at once.
 */
export const BACKUP_HEARTBEAT: BackupHeartbeat = { intervalSeconds: 10, staleAfterSeconds: 90 };
const RUN_HEARTBEAT_FILE = `${RUN_OUTCOME_DIR}/heartbeat`;

/**
 * Failure code the recorder records when the backup's heartbeat went stale with no outcome written
 * (matches scheduled_job_runs' CHECK, like the codes the backup writes).
 */
export const BACKUP_STOPPED_WITHOUT_OUTCOME = "BACKUP_STOPPED_WITHOUT_OUTCOME";

/**
 * Shell lines starting a backup's heartbeat loop (BackupHeartbeat), where the outcome's
 * directory exists (a run with no recorder writes nothing), its pid in `$heartbeat_pid` for the EXIT
 * trap. `$$` is the backup's shell in the loop's subshell too. Not `set -e` there: a failed write
 * or sleep must not end the loop (a write failing for good makes the heartbeat stale, which the
 * recorder reports); the loop's output goes nowhere, so nothing waiting for the backup's output waits
 * for the loop's last sleep.
 */
function heartbeating(heartbeat: BackupHeartbeat): string[] {
  const file = shellQuote(RUN_HEARTBEAT_FILE);
  const partial = shellQuote(`${RUN_HEARTBEAT_FILE}.partial`);
  return [
    `if [ -d ${shellQuote(RUN_OUTCOME_DIR)} ]; then`,
    `  ( set +e; beat=0; while kill -0 "$$" 2>/dev/null; do beat=$((beat + 1)); { printf '%s\\n' "$beat" > ${partial} && mv -f ${partial} ${file}; } 2>/dev/null; sleep ${heartbeat.intervalSeconds}; done ) < /dev/null > /dev/null 2>&1 &`,
    "  heartbeat_pid=$!",
    "fi",
  ];
}

/**
 * Shell lines, shared by both backups, that end a run with its failure's code, once: `stop_code`, the
 * EXIT trap (its `cleanup` first, then on a non-zero status `<reportFailure> <code>`, the signal's
 * name or `EXIT_<n>`, then the heartbeat stopped) and the signal traps. The runtime's stop signal
 * (the time limit, a drain: the image's STOPSIGNAL, SIGINT for PostgreSQL's, SIGTERM for
 * ClickHouse's) reaches the shell only (PID 1), which runs a trap only once its foreground command
 * ends: the long command (pg_dump, each client run) runs in the background, its pid in `$<child>`,
 * so `wait` returns at once and it is stopped with the shell. Each signal is reported by its own
 * name and exits 128 + its number. With `heartbeat` (a run recorder watches), the heartbeat loop
 * starts here, before anything long runs.
 */
function runEnding(opts: { child: string; cleanup: string; reportFailure: "record_failure" | "report_outcome"; heartbeat?: BackupHeartbeat }): string[] {
  const stopHeartbeat = opts.heartbeat ? ' [ -z "$heartbeat_pid" ] || kill "$heartbeat_pid" 2>/dev/null || true;' : "";
  return [
    `${opts.child}=""`,
    'stop_code=""',
    ...(opts.heartbeat ? ['heartbeat_pid=""'] : []),
    `trap 'status=$?; trap - EXIT; ${opts.cleanup}; if [ "$status" -ne 0 ]; then ${opts.reportFailure} "\${stop_code:-EXIT_$status}"; fi;${stopHeartbeat} exit "$status"' EXIT`,
    `stop() { stop_code=$1; [ -z "$${opts.child}" ] || kill "$${opts.child}" 2>/dev/null || true; exit "$2"; }`,
    "trap 'stop SIGHUP 129' HUP; trap 'stop SIGINT 130' INT; trap 'stop SIGTERM 143' TERM",
    ...(opts.heartbeat ? heartbeating(opts.heartbeat) : []),
  ];
}

/**
 * How long the stopped recorder waits for the backup's outcome: the backup's trap writes it at once
 * (its client runs in the background), and the wait, plus psql's bounded write, stays well inside the
 * 30 s the runtime allows a stopped container before SIGKILL.
 */
export const RECORDER_STOP_WAIT_SECONDS = 5;

/**
 * Shell of a backup's run recorder, the second container of the backup's pod, from the PostgreSQL
 * image (psql; PGPASSWORD is its own secret variable, which the ClickHouse container never receives;
 * the PostgreSQL backup's container has that password for pg_dump anyway). Why a companion container
 * for the PostgreSQL backup, whose image has psql: a container killed outright (SIGKILL, out of
 * memory) records nothing, and only a process outside it notices that before the time limit (see
 * PostgresRecording for why the recorder then records the whole run). For ClickHouse: its image, kept the store's own so its client
 * matches the server, has no psql, and adding one to the datastore's image would also hand the
 * PostgreSQL password to the container that runs ClickHouse's client; the ClickHouse server writing
 * the row itself (24.8's postgresql() table function; 18.16 has none) would put the password in a
 * query its logs keep; a route of a service would need a credential of its own. In one pod, the
 * recorder starts and ends with the run, and the time limit stops both containers at once
 * (activeDeadlineSeconds). The pod's network policy is shared: the ClickHouse container may open a
 * connection to PostgreSQL, without its password.
 *
 * It records the start as a self-recording PostgreSQL backup does, waits for the outcome the backup leaves in
 * RUN_OUTCOME_DIR, and records a success or the failure's code (checked against the codes the backup
 * writes: the file is the other container's, so nothing else reaches the SQL; anything else is
 * `OUTCOME_UNREADABLE`). Stopped first (the time limit, a drain, a deletion: the runtime stops the
 * pod's containers together, each with its image's STOPSIGNAL, which containerd and CRI-O honour:
 * SIGTERM for the ClickHouse images, SIGINT for the PostgreSQL images the recorder runs in), it waits
 * up to RECORDER_STOP_WAIT_SECONDS for the outcome the backup's own trap writes (the signal that
 * stopped the backup, e.g. `SIGTERM`) and records it, else the signal that stopped the recorder
 * itself (`SIGINT` in the PostgreSQL image). The sleeps run in the background so the trap runs at
 * once. While it waits it reads the backup's heartbeat (BackupHeartbeat) every second: unchanged, or
 * never written, for `heartbeat.staleAfterSeconds` with still no outcome, the backup's container
 * stopped without one (its shell SIGKILLed or out of memory, the container gone) and the recorder
 * records BACKUP_STOPPED_WITHOUT_OUTCOME then, not at the run's time limit (an outcome written by
 * then still wins). Exits 0 once it recorded the outcome (the backup's container alone decides
 * whether the run failed), 128 + n when stopped by signal n.
 */
export function backupRunRecorderScript(job: string, postgres: PostgresConnection = CLUSTER_POSTGRES, heartbeat: BackupHeartbeat = BACKUP_HEARTBEAT): string {
  return [
    "set -u",
    ...postgresRunRecording(postgres, job),
    'finished=""',
    'sleeper=""',
    // $1: the code when the file holds none (stopped before the backup ended).
    "finish() {",
    "  finished=1",
    `  code=$(cat ${shellQuote(RUN_OUTCOME_FILE)} 2>/dev/null || true)`,
    '  [ -n "$code" ] || code=$1',
    '  case "$code" in',
    "    SUCCESS) record_success; return ;;",
    "    *[!A-Z0-9_]*) code=OUTCOME_UNREADABLE ;;",
    `    EXIT_[0-9]|EXIT_[0-9][0-9]|EXIT_[0-9][0-9][0-9]|SIGHUP|SIGINT|SIGTERM|OUTCOME_UNREADABLE|${BACKUP_STOPPED_WITHOUT_OUTCOME}) ;;`,
    "    *) code=OUTCOME_UNREADABLE ;;",
    "  esac",
    '  record_failure "$code"',
    "}",
    // $1: the exit status, $2: the signal's name. A second signal while it waits or records changes nothing.
    "stopped() {",
    "  trap '' HUP INT TERM",
    '  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null',
    '  if [ -z "$finished" ]; then',
    "    waited=0",
    `    while [ ! -e ${shellQuote(RUN_OUTCOME_FILE)} ] && [ "$waited" -lt ${RECORDER_STOP_WAIT_SECONDS} ]; do sleep 1; waited=$((waited + 1)); done`,
    '    finish "$2"',
    "  fi",
    '  exit "$1"',
    "}",
    "trap 'stopped 129 SIGHUP' HUP; trap 'stopped 130 SIGINT' INT; trap 'stopped 143 SIGTERM' TERM",
    "record_start",
    'last_beat=""',
    "unchanged=0",
    `while [ ! -e ${shellQuote(RUN_OUTCOME_FILE)} ] && [ "$unchanged" -lt ${heartbeat.staleAfterSeconds} ]; do`,
    '  sleep 1 & sleeper=$!; wait "$sleeper"; sleeper=""',
    `  beat=$(cat ${shellQuote(RUN_HEARTBEAT_FILE)} 2>/dev/null || true)`,
    '  if [ "$beat" != "$last_beat" ]; then last_beat=$beat; unchanged=0; else unchanged=$((unchanged + 1)); fi',
    "done",
    `if [ -e ${shellQuote(RUN_OUTCOME_FILE)} ]; then`,
    "  finish OUTCOME_UNREADABLE",
    "else",
    `  echo "the backup container stopped without an outcome: its heartbeat unchanged for ${heartbeat.staleAfterSeconds} s; recording ${BACKUP_STOPPED_WITHOUT_OUTCOME}" >&2`,
    `  finish ${BACKUP_STOPPED_WITHOUT_OUTCOME}`,
    "fi",
  ].join("\n");
}

/**
 * Who records the PostgreSQL backup's run. With a run recorder beside it (`run-recorder`, where the
 * runtime has job companions), the whole recording is the recorder's, as for ClickHouse: the backup
 * writes its outcome and heartbeat only. Not psql in the backup plus a recorder for the "stopped
 * without outcome" case alone: that is two writers of one run, and a backup killed after its psql
 * success but before telling the recorder would get both a success and a stopped verdict (or none,
 * depending on the handshake); one writer records each run exactly once by construction, with the
 * recorder's rules (an outcome in time wins). Without one (`psql`), the backup records its own run.
 */
export type PostgresRecording = "psql" | "run-recorder";

/** What backupScript may be given besides the store: each defaults to the cluster's, production's. */
export interface BackupScriptOptions {
  /** The server the ClickHouse backup exports from (CLUSTER_CLICKHOUSE). */
  clickhouse?: ClickHouseConnection;
  /** The PostgreSQL the PostgreSQL backup dumps and records its run in (CLUSTER_POSTGRES). */
  postgres?: PostgresConnection;
  /** The heartbeat's bounds, where a run recorder watches (BACKUP_HEARTBEAT). */
  heartbeat?: BackupHeartbeat;
  /** Who records the PostgreSQL backup's run ("psql": the backup itself). */
  postgresRecording?: PostgresRecording;
}

/**
 * Shell run by the backup job; pure so the test can read it. Credentials come from the environment
 * only (PGPASSWORD, read by pg_dump and psql; CLICKHOUSE_PASSWORD, see clickhouseClientSetup). The
 * ClickHouse backup always reports to a run recorder (none present: it writes nothing); the
 * PostgreSQL one as `postgresRecording` says.
 */
export function backupScript(
  store: BackedUpStore,
  { clickhouse = CLUSTER_CLICKHOUSE, postgres = CLUSTER_POSTGRES, heartbeat = BACKUP_HEARTBEAT, postgresRecording = "psql" }: BackupScriptOptions = {},
): string {
  // The newest seven complete backups kept: only names this script gives a finished one (a
  // `<db>-<stamp>.dump` file, a `<stamp>` directory) are counted and removed, so neither a killed
  // run's leftover nor anything else in the volume (ext4's lost+found, which the backup's user may
  // not remove: the run would then fail every night once it was the eighth) takes a place or fails
  // the run.
  const complete = store === "postgres" ? `^${postgres.database.replace(/[.[\]()*+?{}|^$\\]/g, "\\$&")}-[0-9]{8}T[0-9]{6}Z\\.dump$` : "^[0-9]{8}T[0-9]{6}Z$";
  const prune = `ls -1t /backups | grep -E ${shellQuote(complete)} | tail -n +8 | while read -r old; do rm -rf "/backups/$old"; done`;
  // What a run killed outright (SIGKILL, out of memory: no trap runs) left half-written: never a
  // backup, removed by the next run (runs never overlap: a CronJob's concurrencyPolicy Forbid).
  const leftovers = "rm -rf /backups/*.partial";
  if (store === "postgres") {
    const recorded = postgresRecording === "run-recorder";
    return [
      "set -eu",
      ...(recorded ? outcomeReporting() : postgresRunRecording(postgres, backupJobName("postgres"))),
      'stamp=$(date -u +%Y%m%dT%H%M%SZ)',
      `file="/backups/${postgres.database}-$stamp.dump"`,
      // A failed or stopped run reports its failure and leaves no partial dump for a restore to take.
      ...runEnding({ child: "dump_pid", cleanup: 'rm -f "$file.partial"', reportFailure: recorded ? "report_outcome" : "record_failure", heartbeat: recorded ? heartbeat : undefined }),
      ...(recorded ? [] : ["record_start"]),
      leftovers,
      `pg_dump --format=custom --no-owner -h ${shellQuote(postgres.host)} -p ${postgres.port} -U ${shellQuote(postgres.user)} -d ${shellQuote(postgres.database)} -f "$file.partial" &`,
      "dump_pid=$!",
      'wait "$dump_pid"',
      'dump_pid=""',
      'mv "$file.partial" "$file"',
      prune,
      recorded ? "report_outcome SUCCESS" : "record_success",
    ].join("\n");
  }
  return [
    "set -eu",
    ...outcomeReporting(),
    'client_dir=""',
    // A failed or stopped run reports its failure's code (its recorder records it) and removes the
    // client's password file; the heartbeat stops once the outcome is written. Every client run (the
    // exports, which last as long as a table's rows, and the table lookups before them) is the
    // background child a stop signal ends at once.
    // The backup is written as `<stamp>.partial` and renamed once whole, so a failed or stopped run
    // leaves nothing a restore or the pruning would take for a backup.
    ...runEnding({ child: "client_pid", cleanup: '[ -z "$client_dir" ] || rm -rf "$client_dir"; [ -z "${partial:-}" ] || rm -rf "$partial"', reportFailure: "report_outcome", heartbeat }),
    'ch_stoppable() { ch_exec "$@" & client_pid=$!; wait "$client_pid"; client_pid=""; }',
    'stamp=$(date -u +%Y%m%dT%H%M%SZ)',
    leftovers,
    `rm -rf "${SCRATCH}"/${BACKUP_CLIENT_DIR_PREFIX}*`,
    'partial="/backups/$stamp.partial"',
    'dir="$partial"',
    'mkdir -p "$dir/tables" "$dir/views"',
    ...clickhouseClientSetup(clickhouse, { traps: "caller's", dirTemplate: `${BACKUP_CLIENT_DIR_PREFIX}XXXXXX` }),
    // Data of tables only: a view has none of its own (a materialized view's rows are its TO table's,
    // which would be saved twice), and a view is created on restore once its tables are back.
    // The lookups are stoppable like the exports (a server that stops answering holds them as long):
    // their lists go through files of the private directory, since a `$(...)` would run the client
    // in a subshell the stop signal does not reach until it ends.
    `ch_stoppable --query "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT IN (${VIEW_ENGINES}) ORDER BY name" > "$client_dir/tables"`,
    `ch_stoppable --query "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine IN (${VIEW_ENGINES}) ORDER BY name" > "$client_dir/views"`,
    'tables=$(cat "$client_dir/tables")',
    'views=$(cat "$client_dir/views")',
    'for t in $tables; do',
    '  ch_stoppable --query "SHOW CREATE TABLE $t FORMAT TSVRaw" > "$dir/tables/$t.sql"',
    '  ch_stoppable --query "SELECT * FROM $t FORMAT Native" > "$dir/tables/$t.native"',
    "done",
    'for v in $views; do',
    '  ch_stoppable --query "SHOW CREATE TABLE $v FORMAT TSVRaw" > "$dir/views/$v.sql"',
    "done",
    'mv "$partial" "/backups/$stamp"',
    'partial=""',
    prune,
    "report_outcome SUCCESS",
  ].join("\n");
}

/**
 * Shell restoring a ClickHouse backup directory (`/backups/<stamp>`) into the database it was taken
 * from, empty, with the job's client and credentials (not scheduled: run by hand, README). Order
 * matters: the tables are created first (a view's CREATE names its source and TO tables), loaded
 * next, the views last, so the restored rows are not fed through the materialized views again.
 */
export function clickhouseRestoreScript(backupDir: string, clickhouse: ClickHouseConnection = CLUSTER_CLICKHOUSE): string {
  return [
    "set -eu",
    `dir=${shellQuote(backupDir)}`,
    ...clickhouseClientSetup(clickhouse),
    'for f in "$dir"/tables/*.sql; do ch --query "$(cat "$f")"; done',
    // An empty table's file is empty, and the client refuses an insert of no data.
    'for f in "$dir"/tables/*.native; do [ -s "$f" ] || continue; ch --query "INSERT INTO $(basename "$f" .native) FORMAT Native" < "$f"; done',
    'for f in "$dir"/views/*.sql; do [ -e "$f" ] || continue; ch --query "$(cat "$f")"; done',
  ].join("\n");
}

/**
 * Time limit asked for one backup run, in seconds, before runTimeoutSeconds caps it at half the
 * schedule's shortest gap: a dump of the stack's databases takes minutes; one still going after
 * three hours is hung (a lock it waits on, a server that stopped answering), and stopping it lets
 * the next night's run start (Forbid skips a tick while a run is going). The stack refuses a
 * backupSchedule that would cut it below BACKUP_MIN_RUN_SECONDS (stacks/config.ts).
 */
export const BACKUP_RUN_TIMEOUT_SECONDS = 10_800;

export interface BackupArgs {
  runtime: Runtime;
  store: BackedUpStore;
  /** Same image as the store, so client and server versions match; runs as the image's user. */
  image: ContainerImage;
  password: pulumi.Output<string>;
  schedule: string;
  /** Time limit of one run (runTimeoutSeconds of the schedule and BACKUP_RUN_TIMEOUT_SECONDS): the CronJob's activeDeadlineSeconds. */
  runTimeoutSeconds: number;
  storageGi: number;
  /**
   * The backup's run recorder (backupRunRecorderScript), where PostgreSQL is deployed and the runtime
   * runs job companions: the PostgreSQL image (psql) and its password, given to the ClickHouse
   * backup's recorder only; the PostgreSQL backup's container has that password already (pg_dump),
   * the same key of the job's Secret. Without one, the PostgreSQL backup records its own runs.
   */
  runRecorder?: { image: ContainerImage; password: pulumi.Output<string> };
  dependsOn: pulumi.Resource[];
}

/** Resources of a backup's run recorder: a shell waiting, and four psql statements. */
const RECORDER_RESOURCES = { cpu: "100m", memory: "64Mi" };

export class Backup extends pulumi.ComponentResource {
  constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:data:Backup", name, {}, opts);
    const uid = args.image.user?.uid;
    if (uid === undefined) throw new pulumi.ResourceError(`${name}: the ${args.store} image ${args.image.ref} names no user to run the backup as (stacks/images.ts)`, this);
    const secretEnv: Record<string, pulumi.Input<string>> =
      args.store === "postgres" ? { PGPASSWORD: args.password } : { CLICKHOUSE_PASSWORD: args.password };
    const recorder = args.runRecorder;
    const recorderUid = recorder?.image.user?.uid;
    if (recorder && recorderUid === undefined) throw new pulumi.ResourceError(`${name}: the run recorder's image ${recorder.image.ref} names no user to run as (stacks/images.ts)`, this);
    const jobName = backupJobName(args.store);
    args.runtime.schedule(
      {
        name: jobName,
        role: "job",
        kind: "job",
        schedule: args.schedule,
        runTimeoutSeconds: args.runTimeoutSeconds,
        image: args.image.ref,
        command: ["sh", "-c", backupScript(args.store, { postgresRecording: recorder ? "run-recorder" : "psql" })],
        env: {},
        secretEnv,
        ports: [],
        volumes: [{ name: "backups", mountPath: "/backups", sizeGi: args.storageGi }],
        files: [],
        resources: { cpu: "500m", memory: "512Mi" },
        replicas: 1,
        security: { runAsUser: uid, runAsGroup: uid, fsGroup: uid, readOnlyRootFilesystem: true, scratchDirs: ["/tmp"] },
        // The pod's network policy: the recorder's connections are the pod's.
        connectsTo: recorder && args.store !== "postgres" ? [args.store, "postgres"] : [args.store],
        acceptsFrom: [],
        labels: { [LABEL_BACKUP_OF]: args.store },
        dependsOn: args.dependsOn,
        ...(recorder && recorderUid !== undefined
          ? {
              companion: {
                name: "run-recorder",
                image: recorder.image.ref,
                command: ["sh", "-c", backupRunRecorderScript(jobName)],
                env: {},
                secretEnv: { PGPASSWORD: recorder.password },
                resources: RECORDER_RESOURCES,
                runAsUser: recorderUid,
                runAsGroup: recorderUid,
                sharedDir: RUN_OUTCOME_DIR,
              },
            }
          : {}),
      },
      this,
    );
    this.registerOutputs({});
  }
}
