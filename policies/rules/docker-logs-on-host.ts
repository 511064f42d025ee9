import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { forEveryWorkload, Workload } from "../lib/rule";
import { isLoopbackIp } from "../lib/loopback";
import { isLoopbackName } from "../lib/routes";
import { isRecord, isUnknown, str } from "../lib/values";

export interface LogsConfig {
    /** Log drivers reviewed to keep logs where the operator wants them (a collector the team runs), besides the host's own. */
    allowedLogDrivers: string[];
}

const defaults: LogsConfig = { allowedLogDrivers: [] };

/** Drivers writing to the host itself: the engine's files (`json-file`, `local`), the host's journal; `none` writes nothing. */
const HOST_DRIVERS = ["json-file", "local", "journald", "none"];
/** Drivers sending to an address their options name (the option, and where it is local when unset). */
const ADDRESSED: Record<string, { option: string; localWhenUnset: boolean }> = {
    syslog: { option: "syslog-address", localWhenUnset: true }, // the host's /dev/log
    fluentd: { option: "fluentd-address", localWhenUnset: true }, // localhost:24224
    gelf: { option: "gelf-address", localWhenUnset: false }, // required
};

/** Whether a log address stays on the host: a unix socket, or a loopback address (lib/loopback.ts) or name. */
export function isHostLogAddress(address: string): boolean {
    const a = address.trim().toLowerCase();
    if (/^unix(gram)?:\/\//.test(a)) return true;
    const rest = a.replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
    const host = (/^\[([^\]]*)\]/.exec(rest)?.[1] ?? rest.split(/[:/]/)[0]).replace(/\.$/, "");
    return isLoopbackName(host) || isLoopbackIp(host);
}

/**
 * Session 62. Every Docker container's output stays on the host, bounded: the program writes it with `json-file`
 * rotated at 10 MB × 3 (components/runtime/docker.ts). A `logDriver` is also a way out of the host that no
 * other policy reads: `gelf`, `syslog` or `fluentd` to an address elsewhere, a cloud's (`awslogs`, `gcplogs`,
 * `splunk`, `logentries`) or a plugin's (`loki`) send every line the services print (request paths with their query
 * tokens, errors quoting what they were given) to whoever runs that address; and `json-file` without `max-size`
 * grows on the host's disk until the engine and every container beside it stop. Unset (the engine's default, from
 * daemon.json) is not judged; a value unknown during preview is judged at `up`.
 */
export function logProblems(w: Workload, cfg: LogsConfig = defaults): string[] {
    const driver = str(w.props.logDriver)?.trim();
    if (driver === undefined || driver === "" || isUnknown(w.props.logOpts)) return [];
    const opts = isRecord(w.props.logOpts) ? w.props.logOpts : {};
    if (cfg.allowedLogDrivers.includes(driver)) return [];
    if (driver === "json-file") {
        const max = str(opts["max-size"])?.trim();
        return max === undefined || max === "" || max === "-1" ? ["writes its logs with json-file without max-size, so they grow on the host's disk until it is full"] : [];
    }
    if (HOST_DRIVERS.includes(driver)) return [];
    const addressed = ADDRESSED[driver];
    if (addressed) {
        const address = opts[addressed.option];
        if (isUnknown(address)) return [];
        const a = str(address);
        if (a === undefined ? addressed.localWhenUnset : isHostLogAddress(a)) return [];
        return [a === undefined
            ? `sends its logs with ${driver} without ${addressed.option}, to an address the pack cannot see`
            : `sends its logs with ${driver} to ${a} (${addressed.option}), off the host`];
    }
    return [`sends its logs with the ${driver} driver, off the host to a collector the pack cannot judge`];
}

export const dockerLogsOnHost: ResourceValidationPolicy = {
    name: "docker-logs-on-host",
    description:
        "Docker containers keep their logs on the host, bounded: a logDriver of json-file (with max-size), local, journald or none, or syslog, " +
        "fluentd, gelf to a unix socket or loopback address; any other driver or address, unless listed in allowedLogDrivers (session 62).",
    severity: "high",
    configSchema: {
        properties: { allowedLogDrivers: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: forEveryWorkload((w, args, reportViolation) => {
        for (const p of logProblems(w, readConfig(args, defaults))) {
            reportViolation(`${w.label} ${p}: every line the services print (request paths with their query tokens, errors quoting their input) goes ` +
                "where the driver sends it. Keep logDriver json-file with logOpts max-size and max-file (the program's 10m × 3), or list a collector " +
                "the operator runs in allowedLogDrivers.");
        }
    }, ["docker"]),
};
