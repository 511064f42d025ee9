/** Jobs: one-shot Jobs the fleet waits for (migrations) and CronJobs on a schedule (backups). */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ONE_SHOT_JOB_DEADLINE_SECONDS, ScheduledJobSpec, WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";
import { podTemplate } from "./pod";

type PodTemplate = ReturnType<typeof podTemplate>;

const restartOnFailure = (template: PodTemplate) => ({ ...template, spec: { ...template.spec, restartPolicy: "OnFailure" } });
/**
 * A job with a companion is retried by a new pod, never by restarting its container in place: the
 * companion has finished with the first attempt (the ClickHouse backup's recorder has recorded its
 * failure and exited), so a container restarted beside it would run with nothing watching it. A
 * new pod starts both again (the recorder records the retry's start). backoffLimit counts either way.
 */
const retryInNewPod = (template: PodTemplate) => ({ ...template, spec: { ...template.spec, restartPolicy: "Never" } });

/**
 * A one-shot Job (the migrations) is stopped at ONE_SHOT_JOB_DEADLINE_SECONDS, the whole Job, retries
 * included. Pulumi waits 10 minutes for the Job and then fails the update; the Job goes on to its deadline.
 */
export function oneShotJob(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  template: PodTemplate,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): k8s.batch.v1.Job {
  return new k8s.batch.v1.Job(
    `${spec.name}-job`,
    {
      metadata: { name: spec.name, namespace: ctx.namespace, labels },
      spec: { backoffLimit: 4, activeDeadlineSeconds: ONE_SHOT_JOB_DEADLINE_SECONDS, template: restartOnFailure(template) },
    },
    ctx.opts(parent, dependsOn),
  );
}

export function cronJob(
  ctx: KubernetesContext,
  spec: ScheduledJobSpec,
  labels: Record<string, string>,
  template: PodTemplate,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): k8s.batch.v1.CronJob {
  return new k8s.batch.v1.CronJob(
    `${spec.name}-cronjob`,
    {
      metadata: { name: spec.name, namespace: ctx.namespace, labels },
      spec: {
        schedule: spec.schedule,
        concurrencyPolicy: "Forbid",
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          metadata: { labels },
          // activeDeadlineSeconds: the whole Job, retries included, is stopped at the run's time limit
          // (its pods get SIGTERM, then SIGKILL after their grace period); every spec carries one
          // (session 64: never unbounded, policy job-active-deadlines).
          spec: { backoffLimit: 2, activeDeadlineSeconds: spec.runTimeoutSeconds, template: spec.companion ? retryInNewPod(template) : restartOnFailure(template) },
        },
      },
    },
    ctx.opts(parent, dependsOn),
  );
}
