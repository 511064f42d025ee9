/**
 * The whole platform for one stack: runtime, credentials, datastores, services, monitoring and the
 * edge, wired from the typed stack config and the service catalog.
 */
import * as pulumi from "@pulumi/pulumi";
import { entryPoint, otlpTracesUrl, traceCollector } from "../catalog";
import { DataComponent, dockerAdminHostPorts, LoadedConfig, StackConfig } from "../stacks";
import { LOCAL_REPOSITORY, stackImages, type ContainerImage, type ImageName } from "../stacks/images";
import { Datastore, datastoreClasses } from "./data";
import { Backup, BackedUpStore, BACKUP_RUN_TIMEOUT_SECONDS } from "./data/backup";
import { hostPorts, unauthenticated } from "./data/definitions";
import { internetEgressOf } from "./internet-egress";
import { Edge } from "./edge/nginx";
import { Grafana, GRAFANA_PORT } from "./monitoring/grafana";
import { Prometheus, PROMETHEUS_PORT } from "./monitoring/prometheus";
import { runTimeoutSeconds, type ScheduledJobAlertTarget } from "./monitoring/scheduled-jobs";
import { createRuntime } from "./runtime";
import { PlatformSecrets } from "./secrets";
import { AppService, ServicesImage, TrainerImage } from "./services";
import { backedUp, backupJobName, backupsScheduled, buildTopology, recordedBackups, EDGE, GRAFANA, PROMETHEUS, scheduledJobName } from "./topology";

const ADMIN_HOST_PORTS = { prometheus: dockerAdminHostPorts.prometheus, grafana: dockerAdminHostPorts.grafana };

export interface PlatformOutputs {
  connectionStrings: Record<string, pulumi.Output<string>>;
  gatewayUrl: string;
  grafanaUrl?: string;
  prometheusUrl?: string;
  services: string[];
  grafanaAdminPassword?: pulumi.Output<string>;
}

export class TradingPlatform extends pulumi.ComponentResource {
  readonly outputs: PlatformOutputs;

  constructor(name: string, loaded: LoadedConfig, opts?: pulumi.ComponentResourceOptions) {
    super("trading:platform:Platform", name, {}, opts);
    const { config, secrets: configSecrets } = loaded;
    const runtime = createRuntime(name, config, this);
    const topology = buildTopology(config, runtime.capabilities);

    const images = stackImages(config);
    const image = (component: ImageName): ContainerImage => {
      const found = images(component);
      if (!found) {
        throw new pulumi.ResourceError(
          `${component} has no offline (local) image: switch it off (trading:${component}Enabled false) or set trading:${component}Image`,
          this,
        );
      }
      return found;
    };

    const credentialNames = [
      ...topology.datastores.filter((d) => !unauthenticated.includes(d)),
      ...(config.monitoring.grafana ? ["grafana-admin"] : []),
    ];
    const secrets = new PlatformSecrets(`${name}-secrets`, { passwords: credentialNames }, { parent: this });

    const datastores: Partial<Record<DataComponent, Datastore>> = {};
    for (const store of topology.datastores) {
      const ds = config.datastores[store];
      datastores[store] = new datastoreClasses[store](
        store,
        {
          runtime,
          image: image(store),
          password: unauthenticated.includes(store) ? undefined : secrets.password(store),
          storageGi: ds.storageGi,
          // Host ports exist only on Docker (the parser keeps publishAdminPorts false elsewhere);
          // a LoadBalancer Service only on Kubernetes.
          publish: config.docker.publishAdminPorts,
          bindAddress: config.docker.adminBindAddress,
          exposeService: config.kubernetes.exposeDatastores,
          externalHost: runtime.operatorHost(store),
          acceptsFrom: topology.acceptsFrom[store] ?? [],
          // PostgreSQL's max_connections: the stack's, or what its pools and jobs can open at once (stacks/service-settings.ts).
          maxConnections: store === "postgres" ? config.postgresMaxConnections : undefined,
          // Its memory limit, which the stack config checks that max_connections fits.
          memoryGi: store === "postgres" ? config.postgresMemoryGi : undefined,
        },
        { parent: this },
      );
    }

    // Kubernetes only, by decision (topology.ts backupsScheduled): a backup runs in its datastore's
    // image, which has no cron runner for Docker's scheduler.
    const backupRunTimeout = runTimeoutSeconds(config.kubernetes.backupSchedule, BACKUP_RUN_TIMEOUT_SECONDS);
    // The backups whose runs are recorded, and their alerts: by a run recorder for each where the runtime
    // runs job companions; elsewhere PostgreSQL's records its own.
    const recorded = recordedBackups(runtime.capabilities, topology.datastores);
    if (backupsScheduled(runtime.capabilities)) {
      for (const store of backedUp) {
        const ds = datastores[store];
        if (!ds) continue;
        new Backup(
          `${store}-backup`,
          {
            runtime,
            store: store as BackedUpStore,
            image: image(store),
            password: secrets.password(store),
            schedule: config.kubernetes.backupSchedule,
            runTimeoutSeconds: backupRunTimeout,
            storageGi: config.datastores[store].storageGi,
            runRecorder:
              recorded.includes(store) && runtime.capabilities.jobCompanions
                ? { image: image("postgres"), password: secrets.password("postgres") }
                : undefined,
            dependsOn: ds.workload.ready,
          },
          { parent: this },
        );
      }
    }

    // Services: one image, migrations first, then the fleet.
    const registryAuth =
      config.registryUsername && configSecrets.registryPassword
        ? { username: config.registryUsername, password: configSecrets.registryPassword }
        : undefined;
    const servicesImage = new ServicesImage(
      `${name}-services-image`,
      {
        runtime,
        repository: config.registry ? `${config.registry}/ai-trading-services` : `${LOCAL_REPOSITORY}/services`,
        tag: config.servicesImageTag,
        nodeImage: image("node").ref,
        registryAuth,
      },
      { parent: this },
    );
    // The trainer (services image + Python + ml/) exists where a deployed service's scheduled job
    // runs in it: ml-predictor's retraining, on both targets.
    const needsTrainer = runtime.capabilities.scheduledJobs && config.services.some((s) => s.scheduledJob?.image === "trainer");
    const trainerImage = needsTrainer
      ? new TrainerImage(
          `${name}-trainer-image`,
          {
            runtime,
            repository: config.registry ? `${config.registry}/ai-trading-trainer` : `${LOCAL_REPOSITORY}/trainer`,
            tag: config.servicesImageTag,
            servicesImage: servicesImage.image,
            registryAuth,
          },
          { parent: this },
        )
      : undefined;
    const jobImages: Record<"services" | "trainer", pulumi.Output<string> | undefined> = { services: servicesImage.ref, trainer: trainerImage?.ref };
    const dataReady = Object.values(datastores).flatMap((d) => d!.workload.ready);
    const secretValues: Record<string, Record<string, pulumi.Input<string>>> = {
      jwt: { JWT_SECRET: secrets.jwtSecret },
      binance:
        config.trading.mode === "live"
          ? { BINANCE_API_KEY: configSecrets.binanceApiKey!, BINANCE_SECRET_KEY: configSecrets.binanceSecretKey! }
          : {},
      notification: Object.fromEntries(
        [
          ["TELEGRAM_BOT_TOKEN", configSecrets.telegramBotToken],
          ["SMTP_PASSWORD", configSecrets.smtpPassword],
        ].filter((e): e is [string, pulumi.Output<string>] => e[1] !== undefined),
      ),
      payment: Object.fromEntries(
        [
          ["PAYMENT_PROCESSOR_API_KEY", configSecrets.paymentProcessorApiKey],
          ["PAYMENT_WEBHOOK_SECRET", configSecrets.paymentWebhookSecret],
        ].filter((e): e is [string, pulumi.Output<string>] => e[1] !== undefined),
      ),
    };
    const collector = traceCollector(config.services);
    const ordered = [...config.services].sort((a, b) => Number(!!b.preDeployJob) - Number(!!a.preDeployJob));
    const jobsReady: pulumi.Resource[] = [];
    // Each service's scheduled job where the runtime schedules jobs: its schedule and the time limit
    // of a run, given to the runtime and to the alert rules alike.
    const scheduledJobs = new Map<string, ScheduledJobAlertTarget>();
    if (runtime.capabilities.scheduledJobs) {
      for (const s of config.services) {
        if (!s.scheduledJob) continue;
        const schedule = config.jobSchedules[s.scheduledJob.scheduleKey];
        scheduledJobs.set(s.name, { name: scheduledJobName(s.name, s.scheduledJob.name), schedule, runTimeoutSeconds: runTimeoutSeconds(schedule, s.scheduledJob.runTimeoutSeconds) });
      }
    }
    const apps: Record<string, AppService> = {};
    for (const def of ordered) {
      const app = new AppService(
        def.name,
        {
          runtime,
          definition: def,
          image: servicesImage.ref,
          replicas: config.serviceReplicas[def.name],
          datastores,
          secretEnv: Object.assign({}, ...def.secrets.map((s) => secretValues[s])),
          env: {
            LOG_LEVEL: config.logLevel,
            // A Kubernetes replica's PostgreSQL pool where the stack sets none (catalog/sizing.ts), counted
            // against max_connections and PostgreSQL's memory by the stack config; serviceSettings wins.
            ...(config.postgresPoolDefaults[def.name] !== undefined ? { POSTGRES_POOL_MAX: String(config.postgresPoolDefaults[def.name]) } : {}),
            // The variables the stack sets (trading:serviceSettings), checked across services by the stack config.
            ...Object.fromEntries(Object.entries(config.serviceSettings[def.name] ?? {}).map(([k, v]) => [k, String(v)])),
            ...(def.entryPoint
              ? {
                  RATE_LIMIT_WINDOW_MS: String(config.rateLimit.windowMs),
                  RATE_LIMIT_MAX_REQUESTS: String(config.rateLimit.maxRequests),
                  // Only the edge (Nginx / the ingress controller) may set X-Forwarded-For: per-IP limits
                  // then key on the real client, and a client-written header is ignored.
                  TRUST_PROXY: config.trustedProxies,
                  // A global IPv6 pod network in trustedProxies, declared as such (stacks/config.ts).
                  ...(config.trustGlobalIPv6Proxies ? { TRUST_PROXY_GLOBAL_IPV6: "true" } : {}),
                }
              : {}),
            ...(def.tier === "trading" ? { TRADING_MODE: config.trading.mode, MARKET_DATA_SOURCE: config.trading.marketDataSource } : {}),
            // Spans to chain-debug when it is deployed (the collector does not trace itself).
            ...(collector && collector.name !== def.name ? { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpTracesUrl(collector) } : {}),
            ...(def.secrets.includes("notification") ? { ...smtpEnv(config.smtp), NOTIFY_WEBHOOK_PORTS: config.notifyWebhookPorts.join(",") } : {}),
          },
          connectsTo: topology.connectsTo[def.name] ?? [],
          acceptsFrom: topology.acceptsFrom[def.name] ?? [],
          // Binance (orders in live mode, market data from it), the card processor when its key is
          // set, the notification channels (the SMTP relay on its port, Telegram, webhooks).
          internetEgress: internetEgressOf(def, config, configSecrets.paymentProcessorApiKey !== undefined),
          dependsOn: def.preDeployJob ? dataReady : [...dataReady, ...jobsReady],
          scheduledJob:
            def.scheduledJob && scheduledJobs.has(def.name)
              ? {
                  image: jobImages[def.scheduledJob.image]!,
                  schedule: scheduledJobs.get(def.name)!.schedule,
                  runTimeoutSeconds: scheduledJobs.get(def.name)!.runTimeoutSeconds,
                  connectsTo: topology.connectsTo[scheduledJobName(def.name, def.scheduledJob.name)] ?? [],
                }
              : undefined,
        },
        { parent: this },
      );
      if (app.preDeployJob) jobsReady.push(...app.preDeployJob.ready);
      apps[def.name] = app;
    }

    let prometheus: Prometheus | undefined;
    if (config.monitoring.prometheus) {
      prometheus = new Prometheus(
        PROMETHEUS,
        {
          runtime,
          image: image("prometheus"),
          services: config.services,
          // A Kubernetes CronJob runs no cron runner: only the Docker runtime's scheduled jobs export
          // scheduled_job_runs_total. Every runtime's jobs record their runs, which their service exports.
          scheduledJobs: [
            ...scheduledJobs.values(),
            // The backups record their runs too (backup.ts: the PostgreSQL one with psql, the ClickHouse
            // one through its run recorder), exported by database-service (catalog exportsJobRuns):
            // alerted where they are scheduled and recorded.
            ...recorded.map((store) => ({
              name: backupJobName(store),
              schedule: config.kubernetes.backupSchedule,
              runTimeoutSeconds: backupRunTimeout,
            })),
          ],
          scheduledJobHosts: runtime.capabilities.scheduledJobImages === "with-cron-runner" ? Object.values(apps).flatMap((a) => (a.scheduledJob ? [a.scheduledJob.host] : [])) : [],
          retentionDays: config.monitoring.retentionDays,
          storageGi: 10,
          hostPort: config.docker.publishAdminPorts ? ADMIN_HOST_PORTS.prometheus : undefined,
          bindAddress: config.docker.adminBindAddress,
          connectsTo: topology.connectsTo[PROMETHEUS] ?? [],
          acceptsFrom: topology.acceptsFrom[PROMETHEUS] ?? [],
        },
        { parent: this },
      );
    }
    let grafana: Grafana | undefined;
    if (config.monitoring.grafana && prometheus) {
      grafana = new Grafana(
        GRAFANA,
        {
          runtime,
          image: image("grafana").ref,
          adminPassword: secrets.password("grafana-admin"),
          prometheusUrl: prometheus.url,
          services: config.services,
          storageGi: 5,
          hostPort: config.docker.publishAdminPorts ? ADMIN_HOST_PORTS.grafana : undefined,
          bindAddress: config.docker.adminBindAddress,
          connectsTo: topology.connectsTo[GRAFANA] ?? [],
          acceptsFrom: topology.acceptsFrom[GRAFANA] ?? [],
        },
        { parent: this },
      );
    }

    const gateway = entryPoint(config.services);
    let gatewayUrl = "(no entry point deployed)";
    if (gateway) {
      const edge = new Edge(
        EDGE,
        {
          runtime,
          services: config.services,
          gateway: { host: gateway.name, port: gateway.port },
          host: config.kubernetes.ingressHost,
          image: image("nginx"),
          httpPort: config.docker.httpPort,
          httpsPort: config.docker.httpsPort,
          tls:
            configSecrets.tlsCertificate && configSecrets.tlsPrivateKey
              ? { cert: configSecrets.tlsCertificate, key: configSecrets.tlsPrivateKey }
              : undefined,
          connectsTo: topology.connectsTo[EDGE] ?? [],
          dependsOn: apps[gateway.name].workload.ready,
        },
        { parent: this },
      );
      gatewayUrl = edge.url;
    }

    const connectionStrings: Record<string, pulumi.Output<string>> = {};
    for (const [store, ds] of Object.entries(datastores)) connectionStrings[store] = ds!.connectionString;
    const adminHostPort = (port: number) => (config.docker.publishAdminPorts ? port : undefined);
    this.outputs = {
      connectionStrings,
      gatewayUrl,
      prometheusUrl: prometheus ? runtime.operatorUrl(PROMETHEUS, PROMETHEUS_PORT, adminHostPort(ADMIN_HOST_PORTS.prometheus)) : undefined,
      grafanaUrl: grafana ? runtime.operatorUrl(GRAFANA, GRAFANA_PORT, adminHostPort(ADMIN_HOST_PORTS.grafana)) : undefined,
      services: config.services.map((s) => s.name),
      grafanaAdminPassword: grafana ? secrets.password("grafana-admin") : undefined,
    };
    this.registerOutputs({ ...this.outputs });
  }
}

export { hostPorts };

/** notification-service's SMTP settings (the password comes from the `notification` secret). */
function smtpEnv(smtp: StackConfig["smtp"]): Record<string, string> {
  if (!smtp.host) return {};
  return {
    SMTP_HOST: smtp.host,
    SMTP_PORT: String(smtp.port),
    SMTP_SECURE: String(smtp.port === 465),
    SMTP_FROM: smtp.from,
    ...(smtp.username ? { SMTP_USER: smtp.username } : {}),
  };
}
