/**
 * Each account's share of the charge-lock connections (./charge-locks.ts): at most `share` of one
 * account's charges hold (or check out) a connection at once; the account's next charge waits, within
 * the charge's wait, for one of its own to end, and is answered 429 CHARGES_IN_PROGRESS when none did
 * (nothing inserted or sent yet: the same key may be sent again). Without it one account's charges at a
 * slow processor held every connection and every other user's charge was a 503 CHARGE_LOCKS_BUSY.
 * In-process: each replica gives an account its share of its own connections.
 */
import { HttpError } from "../../kit";

/** How many of `connections` one account's charges may hold at once: half, at least one. */
export const accountShare = (connections: number) => Math.max(1, Math.floor(connections / 2));

export class AccountShares {
  /** Per account, its charges holding a place, and those waiting for one, first come first served. */
  private readonly accounts = new Map<string, { holding: number; waiting: Array<() => void> }>();

  constructor(
    private readonly share: number,
    private readonly waitMs: number,
    private readonly retryAfterS: number,
  ) {}

  /** A place among the account's share, or 429 CHARGES_IN_PROGRESS when none freed within the wait. */
  async take(userId: string): Promise<void> {
    let account = this.accounts.get(userId);
    if (!account) this.accounts.set(userId, (account = { holding: 0, waiting: [] }));
    if (account.holding < this.share) {
      account.holding++;
      return;
    }
    const a = account;
    // A place handed over by done() keeps `holding` as it was: the ending charge's place is this one's.
    const handedOver = await new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        a.waiting.splice(a.waiting.indexOf(wake), 1);
        resolve(false);
      }, this.waitMs);
      a.waiting.push(wake);
    });
    if (handedOver) return;
    this.forgetIdle(userId);
    throw new HttpError(
      429,
      "CHARGES_IN_PROGRESS",
      `${this.share} of this account's charges are at the card processor and none ended within the wait; nothing was charged or recorded, retry once one has ended`,
      undefined,
      { "retry-after": String(this.retryAfterS) },
    );
  }

  /** A charge of the account ended (or never got its connection): its place goes to the account's next waiting charge. */
  done(userId: string): void {
    const account = this.accounts.get(userId);
    if (!account) return;
    const next = account.waiting.shift();
    if (next) return next();
    account.holding--;
    this.forgetIdle(userId);
  }

  /** Accounts with a charge holding or waiting (the map keeps no other). */
  get size(): number {
    return this.accounts.size;
  }

  private forgetIdle(userId: string): void {
    const account = this.accounts.get(userId);
    if (account && account.holding === 0 && account.waiting.length === 0) this.accounts.delete(userId);
  }
}
