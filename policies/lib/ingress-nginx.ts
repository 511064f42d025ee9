/**
 * Session 53: the ingress-nginx controllers the stack declares (pure), as the controller reads its own command line: the
 * ConfigMap it takes its settings from (`--configmap=<namespace>/<name>`; the chart passes `$(POD_NAMESPACE)/<release>-controller`)
 * and the namespaces whose Ingresses it serves (`--watch-namespace`, comma-separated; `--watch-namespace-selector`; neither:
 * every namespace). A controller container is one running ingress-nginx's image (`…/ingress-nginx/controller`) or its binary
 * (`/nginx-ingress-controller`).
 */
import { parseImageRef } from "../../catalog/images";
import { k8sCommandLine } from "./command-line";
import { workloadOf } from "./rule";
import type { StackResource } from "./stack";
import { arr, hasUnknown, isRecord, str } from "./values";
import { describe, isK8sWorkload, K8S, K8sContainer, namespaceOf, objectName } from "./workloads";

/** The chart's name for the controller ConfigMap (release `ingress-nginx`), read when a controller names none. */
export const DEFAULT_CONTROLLER_CONFIGMAP = "ingress-nginx-controller";

export interface NginxController {
    urn: string;
    /** `Deployment "ingress-nginx-controller" container "controller"`. */
    who: string;
    /** The ConfigMap it reads, as namespace/name; `named`: given by --configmap (else the chart's default name in its namespace). */
    configMap: { namespace: string; name: string; named: boolean } | undefined;
    /** The namespaces it serves: a list, "unresolved" (a label selector, or a value the pack cannot expand), or "all". */
    watched: string[] | "unresolved" | "all";
    /** The flag as written, for messages. */
    watchFlag?: string;
}

function isControllerContainer(c: K8sContainer, words: string[]): boolean {
    const image = str(c.container.image);
    const ref = image === undefined ? undefined : parseImageRef(image);
    if (ref && !ref.isImageId && /(^|\/)ingress-nginx\/controller(-chroot)?$/.test(ref.repository)) return true;
    return words.some((w) => w.split("/").pop() === "nginx-ingress-controller");
}

/** `--flag=value` or `--flag value` (one or two dashes, as Go's flag package reads them); the last one given wins. */
function flag(words: string[], name: string): string | undefined {
    let value: string | undefined;
    words.forEach((w, i) => {
        const m = /^--?([^=]+)(?:=(.*))?$/.exec(w);
        if (m && m[1] === name) value = m[2] ?? words[i + 1];
    });
    return value?.replace(/^["']|["']$/g, "");
}

/** `$(VAR)` expanded as the kubelet does, from the container's literal env and its downward-API namespace; undefined when one cannot be. */
function expand(value: string, c: K8sContainer, namespace: string): string | undefined {
    let unresolved = false;
    const out = value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => {
        const e = arr(c.container.env).find((x) => isRecord(x) && x.name === name);
        if (isRecord(e) && str(e.value) !== undefined) return str(e.value)!;
        if (isRecord(e) && str(e.valueFrom?.fieldRef?.fieldPath) === "metadata.namespace") return namespace;
        unresolved = true;
        return whole;
    });
    return unresolved ? undefined : out;
}

/** The ingress-nginx controllers among the stack's workloads; a value unknown during preview leaves that part undefined. */
export function nginxControllers(resources: readonly StackResource[]): NginxController[] {
    const out: NginxController[] = [];
    for (const r of resources.filter((x) => isK8sWorkload(x.type))) {
        const w = workloadOf("kubernetes", r.type, r.name, r.props);
        const namespace = namespaceOf(r.props);
        for (const c of w.containers) {
            if (c.init) continue;
            const words = k8sCommandLine(c).flatMap((e) => e.text.trim().split(/\s+/)).filter((x) => x !== "");
            if (!isControllerContainer(c, words)) continue;
            const given = flag(words, "configmap");
            const ref = given === undefined ? undefined : hasUnknown(given) ? undefined : expand(given, c, namespace);
            const configMap = given === undefined ? { namespace, name: DEFAULT_CONTROLLER_CONFIGMAP, named: false }
                : ref === undefined || ref.trim() === "" ? undefined
                    : ref.includes("/") ? { namespace: ref.split("/")[0], name: ref.split("/").slice(1).join("/"), named: true } : { namespace, name: ref, named: true };
            const watch = flag(words, "watch-namespace");
            const watchValue = watch === undefined ? undefined : expand(watch, c, namespace);
            const watched = watchValue !== undefined && watchValue.trim() !== "" ? watchValue.split(",").map((n) => n.trim()).filter((n) => n !== "")
                : flag(words, "watch-namespace-selector") !== undefined || (watch !== undefined && watchValue === undefined) ? "unresolved" as const : "all" as const;
            out.push({ urn: r.urn, who: `${describe(r.type, r.name)} container "${c.name}"`, configMap, watched, watchFlag: watch === undefined ? undefined : `--watch-namespace=${watch}` });
        }
    }
    return out;
}

/** The declared ConfigMap a controller reads, if the stack declares it. */
export function controllerConfigMapOf(controller: NginxController, resources: readonly StackResource[]): StackResource | undefined {
    const ref = controller.configMap;
    return ref === undefined ? undefined
        : resources.find((r) => r.type === K8S.configMap && namespaceOf(r.props) === ref.namespace && objectName(r.props, r.name) === ref.name);
}

/**
 * Session 53: which ConfigMaps ingress-nginx reads as its configuration. When the stack declares controllers, the ones their
 * --configmap flags name (the chart's default name in the controller's namespace when a controller has none): another
 * ConfigMap holding `use-forwarded-headers` is not the controller's and is not judged as such. When it declares none, the
 * controller is installed elsewhere and any ConfigMap may be its: judged by its keys, as before. Session 54: read by
 * edge-gateway-contract, ingress-no-snippets and no-insecure-runtime-flags alike (all three stack policies for it).
 */
export function controllerConfigMaps(resources: StackResource[]): (r: StackResource) => boolean {
    const controllers = nginxControllers(resources);
    if (controllers.length === 0) return () => true;
    const read = new Set(controllers.map((c) => controllerConfigMapOf(c, resources)).filter((r): r is StackResource => r !== undefined));
    return (r) => read.has(r);
}
