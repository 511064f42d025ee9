import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { isCredentialName } from "../lib/credentials";
import { fileCredentials } from "../lib/file-credentials";
import { arr, isRecord, isUnknown, str } from "../lib/values";

/** The API server's default for a secret or projected volume's files when neither defaultMode nor an item's mode is set. */
const API_DEFAULT_MODE = 0o644;
const GROUP_READ = 0o040;

const octal = (mode: number) => `0${mode.toString(8)} (${mode} in decimal)`;

/**
 * Why a credential file of this mode is readable beyond its owner, or undefined when it is not: group read only when the
 * group is one the workload chose (`groupWhy` says why not: the pod sets no fsGroup, the upload names no group).
 */
function modeProblem(mode: number, groupChosen: boolean, groupWhy: string, of = "the pod"): string | undefined {
    if (mode & 0o004) return `every other user of ${of} reads it`;
    if (mode & 0o003) return `every other user of ${of} may write or execute it`;
    if (mode & 0o030) return "its group may write or execute it";
    if (mode & GROUP_READ && !groupChosen) return `group 0 (the primary group of every process an image starts without a group of its own) reads it, ${groupWhy}`;
    return undefined;
}
const NO_FS_GROUP = "the pod setting no fsGroup";

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
        const why = modeProblem(fallback, fsGroup, NO_FS_GROUP);
        if (why) out.push(`${where} has ${how}: ${why}`);
    }
    items.forEach((it, k) => {
        const m = mode(it.mode);
        const why = m === undefined ? undefined : modeProblem(m, fsGroup, NO_FS_GROUP);
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
    if (w.target === "docker") return uploadModeProblems(w);
    if (!w.pod) return [];
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

/** The Docker provider's mode for an upload without `permissions`: 0644, 0744 when `executable`. */
const UPLOAD_DEFAULT_MODE = 0o644;

/** Why an upload's text is a credential: a file named for one (`/run/secrets/postgres_password`), or a credential setting in it. */
function credentialIn(u: Record<string, any>): string | undefined {
    const file = str(u.file) ?? "";
    if (isCredentialName(file.split("/").pop() ?? "")) return "a file named for a credential";
    const b64 = str(u.contentBase64);
    const text = str(u.content) ?? (b64 === undefined ? undefined : Buffer.from(b64, "base64").toString("utf8"));
    const found = text === undefined ? [] : fileCredentials(text);
    return found.length > 0 ? `the setting ${found[0].name} on line ${found[0].line}` : undefined;
}

/**
 * Session 63, Docker: an upload holding a credential (as no-default-credentials reads uploads) is a Secret file by another
 * name, judged by the same modes: `permissions` (octal text) carries no other user's bit, no group write or execute, and
 * group read only when the upload names its `group`; unset is the provider's 0644. The program writes its secret files
 * 0400, owned by the container's user (components/runtime/docker.ts).
 */
function uploadModeProblems(w: Workload): string[] {
    const out: string[] = [];
    arr(w.props.uploads).forEach((u, i) => {
        if (!isRecord(u) || isUnknown(u.permissions) || isUnknown(u.content) || isUnknown(u.contentBase64)) return;
        const credential = credentialIn(u);
        if (credential === undefined) return;
        const text = str(u.permissions)?.trim();
        if (text !== undefined && !/^(0o?)?[0-7]{1,4}$/i.test(text)) return; // the provider refuses it
        const m = text === undefined ? (u.executable === true ? 0o744 : UPLOAD_DEFAULT_MODE) : parseInt(text.replace(/^0o/i, ""), 8);
        const group = str(u.group)?.trim();
        const why = modeProblem(m, group !== undefined && group !== "" && group !== "0" && group !== "root", "the upload naming no group of its own", "the container");
        const how = text === undefined ? `no permissions (the provider's ${octal(m)})` : `permissions ${text}`;
        if (why) out.push(`uploads[${i}] (${str(u.file) ?? "<unknown>"}) holds a credential (${credential}) with ${how}: ${why}`);
    });
    return out;
}

export const secretFileModes: ResourceValidationPolicy = {
    name: "secret-file-modes",
    description:
        "A Secret's files in a pod (secret volumes, projected volumes' secret sources) are readable by their owner alone: defaultMode and " +
        "every item's mode carry no other user's bit and no group write or execute, and group read only when the pod sets fsGroup " +
        "(0400, 0600, or 0440 with fsGroup); unset, the API server's 0644 lets every user of the pod read them. A Docker upload holding a " +
        "credential is held to the same modes (permissions; group read only with the upload's group) (session 63).",
    severity: "medium",
    validateResource: workloadRule({}, secretFileModeProblems, (w, p) => w.target === "docker"
        ? `${w.label} ${p}, so a process of the container running as another user reads the credential; set the upload's permissions to 0400 ` +
          "with owner (and group) the container's user, as the program writes its secret files."
        : `${w.label} ${p}, so a process of the pod running as another user (a helper, a sidecar mounting the volume) reads the credentials; ` +
          "set defaultMode (and items' mode) to 0o400, or 0o440 with the pod's securityContext.fsGroup (the kubelet gives that group the volume)."),
};
