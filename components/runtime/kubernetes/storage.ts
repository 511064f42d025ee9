/**
 * Volumes of a workload: claim templates for StatefulSets, a PersistentVolumeClaim of their own for
 * other kinds (the backup jobs), and emptyDir scratch directories for read-only root filesystems.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { VolumeSpec, WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";

export interface WorkloadStorage {
  mounts: k8s.types.input.core.v1.VolumeMount[];
  volumes: k8s.types.input.core.v1.Volume[];
  /** StatefulSets only: one claim per volume and replica. */
  claimTemplates: k8s.types.input.core.v1.PersistentVolumeClaim[];
}

function claimSpec(ctx: KubernetesContext, v: VolumeSpec): k8s.types.input.core.v1.PersistentVolumeClaimSpec {
  return { accessModes: ["ReadWriteOnce"], storageClassName: ctx.settings.storageClass, resources: { requests: { storage: `${v.sizeGi}Gi` } } };
}

export function workloadStorage(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): WorkloadStorage {
  const stateful = spec.kind === "stateful";
  const claims = stateful
    ? []
    : spec.volumes.map(
        (v) =>
          new k8s.core.v1.PersistentVolumeClaim(
            `${spec.name}-${v.name}-pvc`,
            { metadata: { name: `${spec.name}-${v.name}`, namespace: ctx.namespace, labels }, spec: claimSpec(ctx, v) },
            ctx.opts(parent, dependsOn),
          ),
      );
  return {
    mounts: [
      ...spec.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath })),
      ...spec.security.scratchDirs.map((d, i) => ({ name: `scratch-${i}`, mountPath: d })),
    ],
    volumes: [
      ...claims.map((c, i) => ({ name: spec.volumes[i].name, persistentVolumeClaim: { claimName: c.metadata.name } })),
      // 64Mi, the size of the same directories' tmpfs on Docker (dockerTmpfsOptions): they hold temp
      // files (the services' and Grafana's /tmp, a backup's client config), never data. A bound keeps one
      // pod from filling the node's disk (policy emptydir-size-limit); the kubelet evicts only that pod.
      ...spec.security.scratchDirs.map((_, i) => ({ name: `scratch-${i}`, emptyDir: { sizeLimit: "64Mi" } })),
    ],
    claimTemplates: stateful ? spec.volumes.map((v) => ({ metadata: { name: v.name, labels }, spec: claimSpec(ctx, v) })) : [],
  };
}
