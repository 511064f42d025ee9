/**
 * Binance request-weight governor. Every REST answer carries `X-MBX-USED-WEIGHT-1M` (weight used in
 * the current minute, per IP). We record it and, once it crosses `limit * safety`, hold further
 * requests until the next minute window starts. A 429 / 418 answer carries `Retry-After` (seconds):
 * we stop until then (418 means an IP ban for ignoring 429s, so never hammer).
 */
export interface WeightGovernorOptions {
  /** REQUEST_WEIGHT limit per minute (Binance spot: 6000; older docs: 1200). */
  limit?: number;
  /** Fraction of the limit at which we start waiting (default 0.8). */
  safety?: number;
  now?: () => number;
}

export class WeightGovernor {
  private used = 0;
  private usedWindow = -1;
  private blockedUntil = 0;
  readonly limit: number;
  readonly safety: number;
  private readonly now: () => number;
  constructor(opts: WeightGovernorOptions = {}) {
    this.limit = opts.limit ?? 6000;
    this.safety = opts.safety ?? 0.8;
    this.now = opts.now ?? Date.now;
  }
  /** Feeds the headers of a response. */
  observe(headers: { get(name: string): string | null }, status: number): void {
    const now = this.now();
    const w = headers.get("x-mbx-used-weight-1m");
    if (w !== null && /^\d+$/.test(w)) {
      this.used = Number(w);
      this.usedWindow = Math.floor(now / 60_000);
    }
    if (status === 429 || status === 418) {
      const ra = headers.get("retry-after");
      const secs = ra !== null && /^\d+$/.test(ra) ? Number(ra) : 60;
      this.blockedUntil = Math.max(this.blockedUntil, now + secs * 1000);
    }
  }
  /** Milliseconds to wait before the next request may be sent (0 = go). */
  delayMs(): number {
    const now = this.now();
    let wait = Math.max(0, this.blockedUntil - now);
    const window = Math.floor(now / 60_000);
    if (this.usedWindow === window && this.used >= this.limit * this.safety) {
      wait = Math.max(wait, (window + 1) * 60_000 - now);
    }
    return wait;
  }
  get usedWeight(): number {
    return this.usedWindow === Math.floor(this.now() / 60_000) ? this.used : 0;
  }
}
