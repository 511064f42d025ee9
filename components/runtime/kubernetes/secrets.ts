/**
 * Credentials and files of a workload: a Secret (secret env, referenced with secretKeyRef, and
 * secret files) and a ConfigMap (plain files), mounted file by file.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";

/** ConfigMap/Secret keys must match [-._a-zA-Z0-9]+; derive one from the file path. */
export function fileKey(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^-._a-zA-Z0-9]/g, "_");
}

export interface WorkloadFiles {
  /**
   * Name of the workload's Secret (referenced by secretKeyRef even when it holds only env): the
   * created object's name, so the pods that reference it are created after it (a pod started
   * before its Secret exists fails with CreateContainerConfigError until it appears).
   */
  secretName: pulumi.Input<string>;
  mounts: k8s.types.input.core.v1.VolumeMount[];
  volumes: k8s.types.input.core.v1.Volume[];
}

export function workloadSecrets(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): WorkloadFiles {
  const secretFiles = spec.files.filter((f) => f.secret);
  const plainFiles = spec.files.filter((f) => !f.secret);
  const secretName = `${spec.name}-credentials`;
  let secretRef: pulumi.Input<string> = secretName;
  if (Object.keys(spec.secretEnv).length > 0 || secretFiles.length > 0) {
    secretRef = new k8s.core.v1.Secret(
      `${spec.name}-secret`,
      {
        metadata: { name: secretName, namespace: ctx.namespace, labels },
        type: "Opaque",
        stringData: {
          ...spec.secretEnv,
          ...Object.fromEntries(secretFiles.map((f) => [fileKey(f.path), f.content])),
        },
      },
      { ...ctx.opts(parent, dependsOn), additionalSecretOutputs: ["data", "stringData"] },
    ).metadata.name;
  }
  let configRef: pulumi.Input<string> = `${spec.name}-files`;
  if (plainFiles.length > 0) {
    configRef = new k8s.core.v1.ConfigMap(
      `${spec.name}-config`,
      {
        metadata: { name: `${spec.name}-files`, namespace: ctx.namespace, labels: { ...labels } },
        data: Object.fromEntries(plainFiles.map((f) => [fileKey(f.path), f.content])),
      },
      ctx.opts(parent, dependsOn),
    ).metadata.name;
  }
  return {
    secretName: secretRef,
    mounts: [
      ...plainFiles.map((f) => ({ name: "files", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
      ...secretFiles.map((f) => ({ name: "secret-files", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
    ],
    volumes: [
      ...(plainFiles.length > 0 ? [{ name: "files", configMap: { name: configRef } }] : []),
      ...(secretFiles.length > 0 ? [{ name: "secret-files", secret: { secretName: secretRef, defaultMode: 0o400 } }] : []),
    ],
  };
}
