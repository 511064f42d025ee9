/**
 * Another PostgreSQL session holding a transaction-scoped advisory lock (an admin's switch, a stalled
 * run) until `letGo`; `releaseAll` ends whatever a failed test left held (its lock goes with its session).
 */
import pg from "pg";

export class AdvisoryLockHolder {
  private held: pg.Client | undefined;

  constructor(private readonly url: () => string) {}

  async hold(key: number | string): Promise<{ letGo: () => Promise<void> }> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    this.held = client;
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [key]);
    return {
      letGo: async () => {
        await client.query("COMMIT");
        await client.end();
        if (this.held === client) this.held = undefined;
      },
    };
  }

  async releaseAll(): Promise<void> {
    if (this.held) await this.held.end().catch(() => undefined);
    this.held = undefined;
  }
}
