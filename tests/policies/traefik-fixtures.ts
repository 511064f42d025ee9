/**
 * Session 52: Traefik reading its static configuration from a ConfigMap, as a program would deploy it (a Deployment of
 * Traefik's image in namespace `traefik`, the ConfigMap mounted where Traefik looks for it).
 */
import { deployment, edit } from "./fixtures";
import type { TestResource } from "./run-pack";

export const TRAEFIK_IMAGE = `docker.io/library/traefik:v3.6.4@sha256:${"2".repeat(64)}`;

/** A ConfigMap in namespace traefik holding `data`. */
export function traefikConfigMap(data: Record<string, string>, name = "traefik-config"): TestResource {
    return { type: "kubernetes:core/v1:ConfigMap", name, props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "traefik" }, data } };
}

/**
 * A Traefik Deployment (namespace traefik) started with `args`, mounting the volume `config` (ConfigMap `traefik-config`
 * unless `volume` says otherwise) as `mount` says (at /etc/traefik by default, where Traefik looks).
 */
export function traefikDeployment(args: string[] = [], mount: Record<string, any> = { mountPath: "/etc/traefik" },
    volume: Record<string, any> = { configMap: { name: "traefik-config" } }, image = TRAEFIK_IMAGE): TestResource {
    return edit(deployment("traefik-proxy", 8000), (p) => {
        p.metadata.namespace = "traefik";
        const c = p.spec.template.spec.containers[0];
        Object.assign(c, { image, args, volumeMounts: [...c.volumeMounts, { name: "config", readOnly: true, ...mount }] });
        p.spec.template.spec.volumes.push({ name: "config", ...volume });
    });
}

/** Traefik reading `file` as its static configuration: the ConfigMap `traefik-config` holding it, and Traefik mounting it at /etc/traefik. */
export function traefikFile(file: string, text: string): TestResource[] {
    return [traefikConfigMap({ [file]: text }), traefikDeployment()];
}

/** A Deployment named traefik (the stack's namespace) whose container runs with `args` and `env` added: Traefik configured by flags and variables. */
export const traefikByFlags = (args: string[], env: Array<{ name: string; value: string }> = []): TestResource => edit(deployment("traefik", 8000), (p) => {
    p.spec.template.spec.containers[0].args = args;
    p.spec.template.spec.containers[0].env = [...(p.spec.template.spec.containers[0].env ?? []), ...env];
});
