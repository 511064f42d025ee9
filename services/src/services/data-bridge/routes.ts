/**
 * data-bridge's HTTP routes:
 *   GET  /last/:symbol          last price and bar
 *   GET  /status                counters
 *   POST /internal/bars         ingest bars (backfill / tests; never proxied by the gateway), as
 *                               objects (`bars`) or positional per symbol (`series`); with
 *                               `flush: true` it answers once they are in ClickHouse
 */
import type { Redis } from "ioredis";
import { HttpError, notFound, ResponseObject, Type, type App } from "../../kit";
import { lastBarKey, lastPriceKey } from "../../trading/events";
import { SYMBOL_RE } from "../../trading/types";
import type { CandleWriter } from "./candle-writer";
import { BarsBody, MAX_BAR_AHEAD_MS } from "./domain";
import type { BarIngest } from "./ingest";

/** How long a `flush: true` post waits for the ClickHouse writer before answering stored: false. */
const FLUSH_WAIT_MS = 30_000;

export function registerRoutes(app: App, ingest: BarIngest, writer: CandleWriter | undefined, redis: Redis, status: () => Record<string, unknown>): void {
  app.post("/internal/bars", { schema: { body: BarsBody } }, async (req) => {
    const { bars, series, flush } = req.body;
    if ((bars === undefined) === (series === undefined)) throw new HttpError(400, "VALIDATION_ERROR", "body must hold either bars or series", "bars");
    // A post brings bars that have opened (a backfill, a test): none from the future (domain.ts MAX_BAR_AHEAD_MS).
    const opensBy = Date.now() + MAX_BAR_AHEAD_MS;
    const partitions = bars ? await ingest.ingest(bars, "bars", opensBy) : await ingest.ingestSeries(series!, "series", opensBy);
    const ingested = bars ? bars.length : series!.reduce((n, s) => n + s.bars.length, 0);
    if (!flush) return { ingested };
    return { ingested, stored: writer ? await writer.waitStored(partitions, FLUSH_WAIT_MS) : false };
  });

  app.get("/last/:symbol", { schema: { params: Type.Object({ symbol: Type.String({ pattern: SYMBOL_RE.source }) }), response: { 200: ResponseObject({ symbol: Type.String(), price: Type.String(), bar: Type.Unknown({ description: "the last bar, or null" }) }) } } }, async (req) => {
    const [price, json] = await Promise.all([redis.get(lastPriceKey(req.params.symbol)), redis.hget(lastBarKey(req.params.symbol), "json")]);
    if (price === null) throw notFound(`no price for ${req.params.symbol}`);
    return { symbol: req.params.symbol, price, bar: json ? JSON.parse(json) : null };
  });

  app.get("/status", { schema: { response: { 200: ResponseObject({ ingested: Type.Number(), stored: Type.Number() }, { description: "also the source, its symbols and the writer's insert count" }) } } }, async () => ({ ...status(), ...ingest.stats, stored: 0, ...writer?.stats }));
}
