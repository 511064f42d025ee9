/**
 * The backtesting replica's bar cache (services/src/services/backtesting-engine/bars.ts) with the
 * `ml-model` strategy: scored series are cached per model version. Keyed by "scored" alone, a replica
 * kept the scores of the first model it had scored a period with: after another model was promoted,
 * an ml-model backtest of that period still followed the old one (its result naming the old version)
 * for as long as the entry stayed in the cache, and the new model's look-ahead check (its training
 * window) was never made. The sources here stand in for ClickHouse and the model registry.
 */
import { describe, expect, it } from "vitest";
import { BarCache } from "../../services/src/services/backtesting-engine/bars";
import type { BarSeries } from "../../services/src/backtest";

describe("the bar cache with a model's scores", () => {
  it("scores again once another model is promoted, and shares the scores of one model between jobs", async () => {
    let promoted = "v1";
    const scoredWith: string[] = [];
    const clickhouse = {
      async query(_sql: string, p: { from: number }) {
        return Array.from({ length: 600 }, (_, i) => ({ t: p.from + i * 60, open: 1, high: 1, low: 1, close: 1, volume: 1 }));
      },
    };
    const scoreBars = async (series: BarSeries): Promise<BarSeries> => {
      scoredWith.push(promoted);
      return { ...series, model: { version: promoted, score: new Float64Array(series.close.length).fill(0.5) } };
    };
    const cache = new BarCache({ clickhouse: clickhouse as never, scoreBars, modelVersion: async () => promoted }, 10_000);
    const req = {
      strategy: "ml-model", symbols: ["BTCUSDT"], interval: "1m", data: { source: "clickhouse" },
      period: { start: "2024-01-01T00:00:00Z", end: "2024-01-01T10:00:00Z" },
    } as never;
    const load = () => cache.loaderFor(req)("BTCUSDT", 0, Number.MAX_SAFE_INTEGER);

    expect((await load()).model?.version).toBe("v1");
    expect((await load()).model?.version).toBe("v1"); // a sweep's next job: the same scores
    expect(scoredWith).toEqual(["v1"]);
    promoted = "v2";
    expect((await load()).model?.version).toBe("v2");
    expect((await load()).model?.version).toBe("v2");
    expect(scoredWith).toEqual(["v1", "v2"]);
  });
});
