/**
 * Each account's share of the charge-lock connections (./charge-locks.ts): at most `share` of one
 * account's charges hold (or check out) a connection at once; the account's next charge waits, within
 * the charge's wait, for one of its own to end, and is answered 429 CHARGES_IN_PROGRESS when none did
 * (nothing inserted or sent yet: the same key may be sent again). Without it one account's charges at a
 * slow processor held every connection and every other user's charge was a 503 CHARGE_LOCKS_BUSY.
 * And an account's second and later charges (its extras) never take the last free connection: that one
 * is kept for an account with no charge at the processor. With a share alone (half of four), two
 * accounts' two charges each held all four and a third user's charge was the 503 (red team, session 57).
 * The first charge of an account is not held back here: past the connections it waits for one in
 * charge-locks.ts (503 CHARGE_LOCKS_BUSY), as any charge did before shares.
 * In-process: each replica gives an account its share of its own connections.
 */
import { HttpError } from "../../kit";

/** How many of `connections` one account's charges may hold at once: half, at least one. */
export const accountShare = (connections: number) => Math.max(1, Math.floor(connections / 2));

export class AccountShares {
  /** Per account, its charges holding a place, and those waiting for one, first come first served. */
  private readonly accounts = new Map<string, { holding: number; waiting: Array<() => void> }>();
  /** Places held by every account's charges in this process (may pass `places`: a first charge is never held back). */
  private held = 0;

  /**
   * `places`: the connections the charges share (PAYMENT_CHARGE_LOCK_CONNECTIONS); an extra is given a
   * place only while another stays free after it. Without it, only the share applies.
   */
  constructor(
    private readonly share: number,
    private readonly waitMs: number,
    private readonly retryAfterS: number,
    private readonly places = Infinity,
  ) {}

  /** A place among the account's share, or 429 CHARGES_IN_PROGRESS when none freed within the wait. */
  async take(userId: string): Promise<void> {
    let account = this.accounts.get(userId);
    if (!account) this.accounts.set(userId, (account = { holding: 0, waiting: [] }));
    if (account.waiting.length === 0 && this.mayTake(account.holding)) {
      account.holding++;
      this.held++;
      return;
    }
    const a = account;
    // A place given by done() or pump() is counted there, before the wake.
    const given = await new Promise<boolean>((resolve) => {
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
    if (given) return;
    this.forgetIdle(userId);
    throw new HttpError(
      429,
      "CHARGES_IN_PROGRESS",
      `this account's charges already at the card processor hold what it may hold now and none ended within the wait; nothing was charged or recorded, retry once one has ended`,
      undefined,
      { "retry-after": String(this.retryAfterS) },
    );
  }

  /** A charge of the account ended (or never got its connection): its place goes to the account's next waiting charge, or back to all. */
  done(userId: string): void {
    const account = this.accounts.get(userId);
    if (!account) return;
    // Handed to the account's next charge: the places held stay as they were (the rule held when it was taken).
    const next = account.waiting.shift();
    if (next) return next();
    account.holding--;
    this.held--;
    this.forgetIdle(userId);
    this.pump();
  }

  /** Accounts with a charge holding or waiting (the map keeps no other). */
  get size(): number {
    return this.accounts.size;
  }

  /** An account holding `holding` places may take one more: within its share, and an extra only while another place stays free after it. */
  private mayTake(holding: number): boolean {
    if (holding === 0) return true;
    return holding < this.share && this.held + 1 < this.places;
  }

  /** A place came free: waiting charges of other accounts that may now take one do, accounts in the order they came. */
  private pump(): void {
    for (const account of this.accounts.values()) {
      while (account.waiting.length > 0 && this.mayTake(account.holding)) {
        account.holding++;
        this.held++;
        account.waiting.shift()!();
      }
    }
  }

  private forgetIdle(userId: string): void {
    const account = this.accounts.get(userId);
    if (account && account.holding === 0 && account.waiting.length === 0) this.accounts.delete(userId);
  }
}
