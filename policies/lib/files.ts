/**
 * The content of a file a workload gives its process (a configuration file a server is started
 * with), as far as the stack shows it: a Docker upload, or on Kubernetes a ConfigMap or Secret
 * key mounted at that path.
 */
import type { Workload } from "./rule";
import type { StackResource } from "./stack";
import { findEnvironmentSource } from "./environment";
import { arr, decodeBase64, isRecord, isUnknown, str } from "./values";
import { K8sContainer, namespaceOf } from "./workloads";

export type FileView =
    /** The content, and (session 52) the stack's ConfigMap or Secret giving it, when one does. */
    | { text: string; source?: StackResource }
    /** Not known during preview (content computed from another resource's output). */
    | { unknown: true }
    /** Given by something the pack cannot read: the path, where it comes from and why it is not read, for the message. */
    | { unseen: string };

function keyOf(source: Record<string, any>, kind: "ConfigMap" | "Secret", key: string): FileView {
    for (const field of kind === "Secret" ? ["stringData", "data"] : ["data", "binaryData"]) {
        const values = source[field];
        if (isUnknown(values)) return { unknown: true };
        if (!isRecord(values) || !Object.hasOwn(values, key)) continue;
        const v = values[key];
        if (isUnknown(v)) return { unknown: true };
        const text = field === "stringData" || (field === "data" && kind === "ConfigMap") ? str(v) : str(v) !== undefined ? decodeBase64(v as string) : undefined;
        if (text !== undefined) return { text };
    }
    return { text: "" };
}

/** A Docker container's upload at `path`: `content`, base64 `contentBase64`, or a host file (`source`) not read. */
function dockerFile(w: Workload, path: string): FileView {
    if (isUnknown(w.props.uploads)) return { unknown: true };
    const upload = arr(w.props.uploads).find((u) => isRecord(u) && str(u.file) === path);
    if (!isRecord(upload)) return { unseen: `${path} of the image, which the pack cannot read` };
    if (isUnknown(upload.content) || isUnknown(upload.contentBase64)) return { unknown: true };
    if (str(upload.content) !== undefined) return { text: upload.content };
    const decoded = str(upload.contentBase64) !== undefined ? decodeBase64(upload.contentBase64) : undefined;
    if (decoded !== undefined) return { text: decoded };
    return { unseen: `${path} uploaded from ${str(upload.source) ?? "a source the stack does not show"}, which the pack does not read` };
}

/** The file at `path` in a Kubernetes container: a volume mount of a stack ConfigMap or Secret key, else unseen. */
function kubernetesFile(w: Workload, c: K8sContainer, path: string, resources: readonly StackResource[]): FileView {
    if (isUnknown(c.container.volumeMounts) || isUnknown(w.pod?.spec.volumes)) return { unknown: true };
    for (const m of arr(c.container.volumeMounts)) {
        const mountPath = isRecord(m) ? str(m.mountPath) : undefined;
        if (!isRecord(m) || mountPath === undefined) continue;
        const subPath = str(m.subPath);
        // Mounted as the file itself (subPath), or a volume whose files land in the mounted directory.
        const inVolume = subPath !== undefined ? (mountPath === path ? subPath : undefined)
            : path.startsWith(`${mountPath.replace(/\/+$/, "")}/`) ? path.slice(mountPath.replace(/\/+$/, "").length + 1) : undefined;
        if (inVolume === undefined) continue;
        const volume = arr(w.pod?.spec.volumes).find((v) => isRecord(v) && str(v.name) === str(m.name));
        const ref = !isRecord(volume) ? undefined
            : isRecord(volume.secret) ? { kind: "Secret" as const, name: volume.secret.secretName, items: volume.secret.items }
                : isRecord(volume.configMap) ? { kind: "ConfigMap" as const, name: volume.configMap.name, items: volume.configMap.items } : undefined;
        if (!ref) return { unseen: `${path} from volume "${str(m.name) ?? "<unnamed>"}", which the pack cannot read` };
        if (isUnknown(ref.name) || isUnknown(ref.items)) return { unknown: true };
        const item = arr(ref.items).find((i) => isRecord(i) && str(i.path) === inVolume);
        const key = isRecord(item) ? str(item.key) ?? inVolume : inVolume;
        const name = str(ref.name) ?? "<unnamed>";
        const source = findEnvironmentSource(resources, ref.kind, name, namespaceOf(w.props));
        if (!source) return { unseen: `${path} from ${ref.kind} "${name}", which the stack does not declare` };
        const view = keyOf(source.props, ref.kind, key);
        return "text" in view ? { ...view, source } : view;
    }
    return { unseen: `${path} of the image, which the pack cannot read` };
}

/** The file at `path` as the workload's process (`c` on Kubernetes) sees it. */
export function workloadFile(w: Workload, c: K8sContainer | undefined, path: string, resources: readonly StackResource[]): FileView {
    return c ? kubernetesFile(w, c, path, resources) : dockerFile(w, path);
}
