/**
 * How the ArangoDB container starts, in place of the vendor image's entrypoint (`/entrypoint.sh`):
 * that one reads ARANGO_ROOT_PASSWORD_FILE into ARANGO_ROOT_PASSWORD and `export`s it, so `arangod`
 * ran with the root password in its environment (`/proc/<pid>/environ`, readable by its uid and
 * root), on every start where it is given as a variable (Kubernetes' secretKeyRef) and on the first
 * with the file (Docker). This does what that entrypoint does for the platform (no init scripts, no
 * NUMA or encryption options are used): on a data directory without `SERVER` (the vendor's test of a
 * first start), `arango-init-database` sets root's password from ARANGODB_DEFAULT_ROOT_PASSWORD, given
 * to that one process only; then the password is dropped from the environment and `arangod` runs with
 * authentication on and the image's configuration (copied to /tmp, as the vendor's entrypoint does,
 * writable whatever the user). The script holds no secret.
 */

/** The vendor image's paths (arangodb:3.11), overridable for the test that runs the script with stand-ins. */
export interface ArangoPaths {
  dataDir: string;
  config: string;
  /** Where the configuration is copied to (the vendor's entrypoint uses /tmp/arangod.conf). */
  runConfig: string;
}

export const ARANGO_PATHS: ArangoPaths = { dataDir: "/var/lib/arangodb3", config: "/etc/arangodb3/arangod.conf", runConfig: "/tmp/arangod.conf" };

export function arangoStartScript(paths: ArangoPaths = ARANGO_PATHS): string {
  return [
    "set -eu",
    `cp '${paths.config}' '${paths.runConfig}'`,
    `if [ ! -f '${paths.dataDir}/SERVER' ]; then`,
    // The variable (Kubernetes) or the file it names (Docker), read here; never exported.
    '  if [ -n "${ARANGO_ROOT_PASSWORD_FILE:-}" ]; then pw="$(cat "$ARANGO_ROOT_PASSWORD_FILE")"; else pw="${ARANGO_ROOT_PASSWORD:-}"; fi',
    '  if [ -z "$pw" ]; then echo "FATAL: the database is uninitialised and neither ARANGO_ROOT_PASSWORD nor ARANGO_ROOT_PASSWORD_FILE gives a password" >&2; exit 1; fi',
    '  echo "Initializing root user..."',
    // As the vendor's entrypoint, a refusal is not fatal: arango-init-database refuses a data directory that
    // is not empty (an init whose arangod never started), which is kept as it is.
    `  ARANGODB_DEFAULT_ROOT_PASSWORD="$pw" arango-init-database -c '${paths.runConfig}' --server.rest-server false --log.level error --database.init-database true || echo "arango-init-database exited $?: a data directory already initialised is kept as it is" >&2`,
    "  unset pw",
    "fi",
    "unset ARANGO_ROOT_PASSWORD ARANGO_ROOT_PASSWORD_FILE",
    `exec arangod --server.authentication=true --config '${paths.runConfig}'`,
  ].join("\n");
}
