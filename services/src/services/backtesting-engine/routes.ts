/**
 * HTTP routes: submit, poll, cancel, results, curves, trades, charts; strategies and their parameters.
 * A submission may carry an Idempotency-Key (per user): a retry with the same body is answered its
 * run (200, `idempotent-replay: true`), the key with another body is a 409 naming it.
 */
import { randomUUID } from "node:crypto";
import { equityChartSvg, ParameterError, strategies } from "../../backtest";
import { accountDeleted, badRequest, conflict, idempotencyKeyOf, idempotencyKeyReused, NoContent, notFound, requestHashOf, requireIdentity, ResponseObject, Type, type ServiceContext } from "../../kit";
import { checkReplay } from "./bars";
import { deleteFinishedRun } from "./deletion";
import { planBacktest, type Limits } from "./plan";
import type { JobQueue } from "./queue";
import { BacktestRequest, JobRef, Page, RunId } from "./schemas";
import type { JobRow, ResultStore } from "./store";

export interface RouteDeps {
  queue: JobQueue;
  store: ResultStore;
  limits: Limits;
  maxAttempts: number;
  /** Queued and running jobs one user may have (a sweep is one job per parameter set). */
  maxOpenJobsPerUser: number;
  replayDir?: string;
  clickhouseEnabled: boolean;
}

/** A library ParameterError as the kit's 400 naming the field. */
function asBadRequest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ParameterError) throw badRequest(e.message, e.field);
    throw e;
  }
}

// Responses (OpenAPI; unnamed fields are kept).
const Svg = { description: "Equity and drawdown chart", content: { "image/svg+xml": { schema: Type.String() } } };
const StrategiesOut = ResponseObject({ strategies: Type.Array(ResponseObject({ name: Type.String(), description: Type.String(), parameters: Type.Unknown() })) });
const Accepted = ResponseObject({ id: Type.String(), status: Type.String(), kind: Type.String(), jobs: Type.Number(), barsPerSymbol: Type.Number(), links: ResponseObject({ self: Type.String(), results: Type.String(), chart: Type.String() }) });
const RunOut = ResponseObject({ id: Type.String(), strategy: Type.String(), kind: Type.String(), status: Type.String(), jobs: Type.Number(), progress: Type.Unknown(), createdAt: Type.Union([Type.String(), Type.Null()]), startedAt: Type.Union([Type.String(), Type.Null()]), finishedAt: Type.Union([Type.String(), Type.Null()]) });
const ResultsOut = ResponseObject({ id: Type.String(), status: Type.String(), kind: Type.String(), jobs: Type.Array(ResponseObject({ job: Type.Number(), status: Type.String(), attempts: Type.Number() }, { description: "with its metrics once succeeded" })) });
const EquityOut = ResponseObject({ job: Type.Number(), time: Type.Array(Type.Number()), equity: Type.Array(Type.Number()), drawdown: Type.Array(Type.Number()) });
const TradesOut = ResponseObject({ job: Type.Number(), total: Type.Number(), trades: Type.Array(Type.Unknown()) });
const CancelOut = ResponseObject({ id: Type.String(), status: Type.Literal("cancelled"), cancelledJobs: Type.Number() });
const iso = (d: Date | null) => (d ? d.toISOString() : null);
const jobView = (j: JobRow) => ({ job: j.idx, status: j.status, attempts: j.attempts, progress: j.progress, ...(j.result ?? {}), ...(j.error ? { error: j.error } : {}) });

export function registerRoutes(ctx: ServiceContext, deps: RouteDeps): void {
  const { app } = ctx;
  const { store } = deps;

  app.get("/strategies", { schema: { response: { 200: StrategiesOut } } }, async () => ({
    strategies: strategies.names().map((name) => {
      const d = strategies.get(name)!;
      return { name, description: d.description, parameters: d.parameters };
    }),
  }));

  app.post("/", { schema: { body: BacktestRequest, response: { 200: Accepted, 202: Accepted } } }, async (req, reply) => {
    const who = requireIdentity(req);
    const key = idempotencyKeyOf(req.headers["idempotency-key"]);
    const body = req.body;
    const plan = asBadRequest(() => planBacktest(body, deps.limits));
    if (body.data.source === "replay") await checkReplay(deps.replayDir, body.data.file).catch((e: ParameterError) => { throw badRequest(e.message, e.field); });
    if (body.data.source === "clickhouse" && !deps.clickhouseEnabled) throw badRequest("this data source is not available in this deployment", "data.source");
    const kind = body.sweep ? "sweep" : body.walkForward ? "walk-forward" : "run";
    const answer = (id: string, status: string) =>
      ({ id, status, kind, jobs: plan.jobs.length, barsPerSymbol: plan.barsPerSymbol, links: { self: `/api/backtests/${id}`, results: `/api/backtests/${id}/results`, chart: `/api/backtests/${id}/chart.svg` } });
    const id = randomUUID();
    const out = await deps.queue.enqueue({ id, ownerId: who.userId, strategy: plan.strategy, kind, request: body }, plan.jobs, deps.maxAttempts, deps.maxOpenJobsPerUser, key ? { key, requestHash: requestHashOf(body) } : null);
    if (out.kind === "key_reused") throw idempotencyKeyReused(key!);
    // Deleted while this request was under way (it passed the gateway before): no run is queued for it.
    if (out.kind === "account_deleted") throw accountDeleted(who.userId, "it runs no backtests");
    if (out.kind === "at_limit")
      throw conflict(`this backtest has ${plan.jobs.length} jobs and ${out.open} of yours are queued or running: at most ${deps.maxOpenJobsPerUser} per user; submit it when they finish`);
    // A retry under the same key and body: the run it made, as it is now (same body, same plan).
    if (out.kind === "replayed") return reply.code(200).header("idempotent-replay", "true").send(answer(out.run.id, out.run.status));
    reply.code(202);
    return answer(id, "queued");
  });

  const ownRun = async (req: Parameters<typeof requireIdentity>[0], id: string) => {
    const run = await store.run(id, requireIdentity(req).userId);
    if (!run) throw notFound(`no backtest ${id}`);
    return run;
  };

  app.get("/:id", { schema: { params: RunId, response: { 200: RunOut } } }, async (req) => {
    const run = await ownRun(req, req.params.id);
    return {
      id: run.id, strategy: run.strategy, kind: run.kind, status: run.status, jobs: run.total_jobs,
      progress: await store.progress(run.id), createdAt: iso(run.created_at), startedAt: iso(run.started_at), finishedAt: iso(run.finished_at),
    };
  });

  // The run's unfinished jobs stop (a running one at its next lease renewal); its finished jobs' results stay readable.
  app.post("/:id/cancel", { schema: { params: RunId, response: { 200: CancelOut } } }, async (req) => {
    const out = await deps.queue.cancel(req.params.id, requireIdentity(req).userId);
    if (!out) throw notFound(`no backtest ${req.params.id}`);
    if ("final" in out) throw conflict(`backtest ${req.params.id} is already ${out.final}: nothing left to cancel`);
    return { id: req.params.id, status: "cancelled" as const, cancelledJobs: out.cancelled };
  });

  // A queued or running run is refused (409), not cancelled and deleted in one go: deleting is not
  // undone, and a run still working is more likely a mistaken id than one meant to go; its owner
  // cancels it first (POST /:id/cancel), which also stops its jobs cleanly. PostgreSQL goes, in one
  // statement (deletion.ts): from then on no read returns the run, and its ClickHouse rows are inert
  // until the series sweep's next pass (sweep.ts) deletes them with other runs' in one mutation per
  // table. A request never issues a mutation itself: each rewrites every part it touches, so a client
  // deleting runs one by one would have ClickHouse rewrite its tables once per run.
  app.delete("/:id", { schema: { params: RunId, response: { 204: NoContent } } }, async (req, reply) => {
    // ClickHouse holds the run id as PostgreSQL prints a uuid (lower case); the schema takes either case.
    const id = req.params.id.toLowerCase();
    const out = await deleteFinishedRun(app.pg, id, requireIdentity(req).userId);
    if (!out) throw notFound(`no backtest ${req.params.id}`);
    if ("open" in out) throw conflict(`backtest ${req.params.id} is still ${out.open}: cancel it first (POST /api/backtests/${req.params.id}/cancel), then delete it`);
    return reply.code(204).send();
  });

  app.get("/:id/results", {
    schema: { params: RunId, querystring: Type.Intersect([Page, Type.Object({ sort: Type.Optional(Type.Union([Type.Literal("job"), Type.Literal("sharpe")])) })]), response: { 200: ResultsOut } },
  }, async (req) => {
    const run = await ownRun(req, req.params.id);
    const { limit = 1_000, offset = 0, sort } = req.query;
    const rows = await store.jobs(run.id, limit, offset, (sort ?? (run.kind === "sweep" ? "sharpe" : "job")) === "sharpe");
    return { id: run.id, status: run.status, kind: run.kind, jobs: rows.map(jobView) };
  });

  const succeededJob = async (id: string, idx: number) => {
    const job = await store.job(id, idx);
    if (!job) throw notFound(`no job ${idx} in backtest ${id}`);
    if (job.status !== "succeeded" || job.result_attempt === null) throw conflict(`job ${idx} is ${job.status}, not succeeded`);
    return job;
  };

  app.get("/:id/jobs/:job/equity", { schema: { params: JobRef, response: { 200: EquityOut } } }, async (req) => {
    const run = await ownRun(req, req.params.id);
    const job = await succeededJob(run.id, req.params.job);
    return { job: job.idx, ...(await store.curve(run.id, job.idx, job.result_attempt!)) };
  });

  app.get("/:id/jobs/:job/trades", { schema: { params: JobRef, querystring: Page, response: { 200: TradesOut } } }, async (req) => {
    const run = await ownRun(req, req.params.id);
    const job = await succeededJob(run.id, req.params.job);
    const { limit = 1_000, offset = 0 } = req.query;
    return { job: job.idx, total: job.result?.trades ?? 0, trades: await store.trades(run.id, job.idx, job.result_attempt!, limit, offset) };
  });

  const chart = async (runId: string, idx: number, title: string) => {
    const job = await succeededJob(runId, idx);
    const c = await store.curve(runId, idx, job.result_attempt!);
    const params = Object.entries(job.result?.parameters ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
    return equityChartSvg({ title: `${title} ${params}`, ...c });
  };
  app.get("/:id/jobs/:job/chart.svg", { schema: { params: JobRef, response: { 200: Svg } } }, async (req, reply) => {
    const run = await ownRun(req, req.params.id);
    reply.type("image/svg+xml");
    return chart(run.id, req.params.job, `${run.strategy} job ${req.params.job}`);
  });
  app.get("/:id/chart.svg", { schema: { params: RunId, response: { 200: Svg } } }, async (req, reply) => {
    const run = await ownRun(req, req.params.id);
    const best = await store.bestJob(run.id);
    if (best === undefined) throw conflict(`backtest ${run.id} has no succeeded job yet (${run.status})`);
    reply.type("image/svg+xml");
    return chart(run.id, best, run.kind === "run" ? run.strategy : `${run.strategy} best of ${run.total_jobs} (job ${best})`);
  });
}
