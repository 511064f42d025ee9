/**
 * What a Binance request can end in besides an answer: a refusal (BinanceApiError), no answer
 * (BinanceTimeoutError), or a placement whose outcome no lookup settled (BinanceOutcomeUnknownError).
 */
export class BinanceApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    readonly binanceMessage: string,
  ) {
    super(`binance answered ${status}${code !== undefined ? ` (code ${code})` : ""}: ${binanceMessage}`);
    this.name = "BinanceApiError";
  }
  /** 5xx: Binance could not tell whether the request executed. */
  get outcomeUnknown(): boolean {
    return this.status >= 500;
  }
}

/** Every attempt to place an order left its outcome unknown: it may be live or filled at Binance. */
export class BinanceOutcomeUnknownError extends Error {
  constructor(readonly cause: unknown) {
    super(`binance order outcome unknown after every attempt: ${(cause as Error)?.message ?? cause}`);
    this.name = "BinanceOutcomeUnknownError";
  }
}

/** Binance could not tell whether the request executed (5xx, timeout, no connection). */
export function outcomeUnknown(err: unknown): boolean {
  return err instanceof BinanceOutcomeUnknownError || err instanceof BinanceTimeoutError || (err instanceof BinanceApiError && err.outcomeUnknown);
}

/** A request timed out or the connection failed: outcome unknown. */
export class BinanceTimeoutError extends Error {
  constructor(readonly cause: unknown) {
    super(`binance request failed without an answer: ${(cause as Error)?.message ?? cause}`);
    this.name = "BinanceTimeoutError";
  }
}
