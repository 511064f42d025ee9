/**
 * The model this replica serves: the registry's promoted model, loaded into onnxruntime-node and
 * reloaded when another version is promoted (polled at most every ML_RELOAD_MS, so every replica
 * follows a promotion or a rollback without a restart). A promoted model that cannot be loaded
 * (artifact not matching its checksum, rejected by onnxruntime, features this server cannot
 * compute) is served by no one: `failure` says why, /predict answers 503 (it was a 500), and the
 * load is tried again at the next check (a fixed artifact, a promotion or a rollback recovers).
 */
import type { Logger } from "pino";
import { PredictionDrift } from "../../ml/drift";
import { loadModel } from "../../ml/model";
import { Predictor } from "../../ml/predictor";
import type { ModelRecord, ModelRegistry } from "../../ml/registry";

export interface ServedModel {
  record: ModelRecord;
  predictor: Predictor;
  drift: PredictionDrift;
}

/** The promoted model this replica could not load, and why. */
export interface LoadFailure {
  version: string;
  message: string;
  since: string;
}

export class ModelServing {
  current: ServedModel | undefined;
  failure: LoadFailure | undefined;
  private checkedAt = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly log: Logger,
    private readonly reloadMs: number,
  ) {}

  /** The promoted model, refreshed when the last check is older than reloadMs (or `force`). */
  async get(force = false): Promise<ServedModel | undefined> {
    if (force || Date.now() - this.checkedAt >= this.reloadMs) {
      this.inflight ??= this.refresh().finally(() => (this.inflight = undefined));
      await this.inflight;
    }
    return this.current;
  }

  private async refresh(): Promise<void> {
    const version = await this.registry.promotedVersion();
    this.checkedAt = Date.now();
    if (version === this.current?.record.version) return;
    const previous = this.current;
    if (!version) {
      this.current = undefined;
      this.failure = undefined;
    } else {
      const m = await this.registry.promoted();
      if (!m) return;
      try {
        const model = await loadModel(m.version, m.artifact, m.features, m.artifactSha256);
        const { artifact: _artifact, ...record } = m;
        this.current = {
          record,
          predictor: new Predictor(model, record),
          drift: new PredictionDrift(m.reference.predictionBins, m.reference.predictionFractions),
        };
        this.failure = undefined;
        this.log.info({ modelVersion: m.version, previous: previous?.record.version }, "serving model");
      } catch (err) {
        // The previous model is not served in its place: it is not the one promoted (a rollback is).
        this.current = undefined;
        const message = (err as Error).message;
        if (this.failure?.version !== m.version || this.failure.message !== message) {
          this.failure = { version: m.version, message, since: new Date().toISOString() };
          this.log.error({ err, modelVersion: m.version, previous: previous?.record.version }, "the promoted model cannot be loaded: predictions are refused (503) until it is fixed, replaced or rolled back");
        }
      }
    }
    // A request may still be running on the previous session: release it a minute later.
    if (previous) setTimeout(() => void previous.predictor.model.close().catch(() => undefined), 60_000).unref();
  }

  async close(): Promise<void> {
    await this.current?.predictor.model.close();
    this.current = undefined;
  }
}
