/**
 * The model this replica serves: the registry's promoted model, loaded into onnxruntime-node and
 * reloaded when another version is promoted (polled at most every ML_RELOAD_MS, so every replica
 * follows a promotion or a rollback without a restart).
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

export class ModelServing {
  current: ServedModel | undefined;
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
    } else {
      const m = await this.registry.promoted();
      if (!m) return;
      const model = await loadModel(m.version, m.artifact, m.features, m.artifactSha256);
      const { artifact: _artifact, ...record } = m;
      this.current = {
        record,
        predictor: new Predictor(model, record),
        drift: new PredictionDrift(m.reference.predictionBins, m.reference.predictionFractions),
      };
      this.log.info({ modelVersion: m.version, previous: previous?.record.version }, "serving model");
    }
    // A request may still be running on the previous session: release it a minute later.
    if (previous) setTimeout(() => void previous.predictor.model.close().catch(() => undefined), 60_000).unref();
  }

  async close(): Promise<void> {
    await this.current?.predictor.model.close();
    this.current = undefined;
  }
}
