import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, isUnknown, str } from "../lib/values";

/** The API server's default for a secret or projected volume's files when neither defaultMode nor an item's mode is set. */
const API_DEFAULT_MODE = 0o644;
/** Bits no Secret file may carry: any of the other users', and group write or execute. */
const NEVER = 0o037;
const GROUP_READ = 0o040;

const octal = (mode: number) => `0${mode.toString(8)} (${mode} in decimal)`;

/** Why a Secret file of this mode is readable beyond its owner, or undefined when it is not (group read only under the pod's fsGroup). */
function modeProblem(mode: number, fsGroup: boolean): string | undefined {
    if (mode & 0o007) return "every other user of the pod reads its files";
    if (mode & 0o030) return "its group may write or execute its files";
    if (mode & GROUP_READ && !fsGroup) return "group 0 (the primary group of every process an image starts without runAsGroup) reads its files, the pod setting no fsGroup";
    return undefined;
}

/** A mode as the API server reads it (an int32; modes arrive as decimal numbers), or undefined when unknown during preview or absent. */
function mode(v: unknown): number | undefined {
    return typeof v === "number" && Number.isInteger(v) ? v : undefined;
}

/**
 * The files of one Secret a volume projects: the source's `items` (each its `mode`, else the default), or every key
 * under the default; `where` names the source for messages.
 */
function secretSourceProblems(where: string, source: Record<string, any>, defaultMode: unknown, fsGroup: boolean): string[] {
    // Unknown during preview (judged at `up`), or not an integer (the API server refuses the pod).
    if (isUnknown(defaultMode) || isUnknown(source.items) || (defaultMode !== undefined && defaultMode !== null && mode(defaultMode) === undefined)) return [];
    const fallback = mode(defaultMode) ?? API_DEFAULT_MODE;
    const how = mode(defaultMode) === undefined ? `no defaultMode (the API server's ${octal(API_DEFAULT_MODE)})` : `defaultMode ${octal(fallback)}`;
    const items = arr(source.items).filter(isRecord);
    const out: string[] = [];
    // The default applies to every key without items, and to each item without a mode.
    if (items.length === 0 || items.some((it) => it.mode === undefined || it.mode === null)) {
        const why = modeProblem(fallback, fsGroup);
        if (why) out.push(`${where} has ${how}: ${why}`);
    }
    items.forEach((it, k) => {
        const m = mode(it.mode);
        const why = m === undefined ? undefined : modeProblem(m, fsGroup);
        if (why) out.push(`${where} items[${k}] (key ${str(it.key) ?? "<unknown>"}) has mode ${octal(m!)}: ${why}`);
    });
    return out;
}

/**
 * Session 63. A Secret volume's files (a `secret` volume, a projected volume's `secret` sources) readable beyond their
 * owner: the API server's default mode is 0644, so unless `defaultMode` or an item's `mode` says otherwise, every user
 * of the pod (a helper the service runs as another user, a sidecar mounting the volume, a process that escaped the
 * service's own user) reads the credentials. Allowed: owner bits only (0400, 0600), and group read (0440) when the pod
 * sets `fsGroup`, the group the kubelet gives the volume (and read, whatever the mode says); never any other user's bit,
 * nor group write or execute. A mode unknown during preview is judged at `up`; ConfigMaps are not judged (credentials
 * never belong there: credentials-from-secret-refs), nor the projected ServiceAccount token (the kubelet's own).
 */
export function secretFileModeProblems(w: Workload): string[] {
    if (w.target !== "kubernetes" || !w.pod) return [];
    const fsGroupRaw = w.pod.spec.securityContext?.fsGroup;
    const fsGroup = isUnknown(w.pod.spec.securityContext) || isUnknown(fsGroupRaw) || typeof fsGroupRaw === "number";
    const out: string[] = [];
    for (const v of arr(w.pod.spec.volumes)) {
        if (!isRecord(v)) continue;
        const name = str(v.name) ?? "<unnamed>";
        if (isRecord(v.secret)) {
            out.push(...secretSourceProblems(`secret volume "${name}" (Secret ${str(v.secret.secretName) ?? "<unknown>"})`, v.secret, v.secret.defaultMode, fsGroup));
        }
        if (isRecord(v.projected)) {
            arr(v.projected.sources).forEach((s, j) => {
                if (isRecord(s) && isRecord(s.secret)) {
                    out.push(...secretSourceProblems(`projected volume "${name}" sources[${j}].secret (Secret ${str(s.secret.name) ?? "<unknown>"})`,
                        s.secret, v.projected.defaultMode, fsGroup));
                }
            });
        }
    }
    return out;
}

export const secretFileModes: ResourceValidationPolicy = {
    name: "secret-file-modes",
    description:
        "A Secret's files in a pod (secret volumes, projected volumes' secret sources) are readable by their owner alone: defaultMode and " +
        "every item's mode carry no other user's bit and no group write or execute, and group read only when the pod sets fsGroup " +
        "(0400, 0600, or 0440 with fsGroup); unset, the API server's 0644 lets every user of the pod read them (session 63).",
    severity: "medium",
    validateResource: workloadRule({}, secretFileModeProblems, (w, p) =>
        `${w.label} ${p}, so a process of the pod running as another user (a helper, a sidecar mounting the volume) reads the credentials; ` +
        "set defaultMode (and items' mode) to 0o400, or 0o440 with the pod's securityContext.fsGroup (the kubelet gives that group the volume).",
        ["kubernetes"]),
};
