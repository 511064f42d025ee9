/**
 * billing-service's gauges of held charges: open invoices whose charge payment-service holds for an
 * operator (charge_held_at, migration 0508). Such an invoice is charged no more until the payment's
 * outcome event, which only an operator's action at payment-service brings, so a hold nobody looks at
 * waits for ever; these make it visible: how many are held, how many longer than
 * BILLING_CHARGE_HOLD_OVERDUE_DAYS, and the oldest hold's age. Read from PostgreSQL when Prometheus
 * scrapes (as portfolio-manager's gauges), so every replica reports the same platform-wide figures. A
 * read that fails or takes longer than `timeoutMs` drops the series for that scrape (logged): /metrics
 * still answers, and no stale figure is reported as current.
 */
import type { Logger } from "pino";
import { Gauge, type Registry } from "prom-client";
import { scrapeRead } from "../../kit";
import type { HeldCharges } from "./held-charges";

export function registerHeldChargeGauges(registry: Registry, read: () => Promise<HeldCharges>, log: Logger, timeoutMs = 2_000): void {
  const held = scrapeRead(read, "the held charges", log, timeoutMs);
  const gauge = (name: string, help: string, pick: (h: HeldCharges) => number | null) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const h = await held();
        const v = h && pick(h);
        if (v === undefined || v === null) this.remove();
        else this.set(v);
      },
    });
  gauge("billing_invoices_charge_held", "Open invoices whose charge payment-service holds for an operator's review (read from PostgreSQL at scrape time)", (h) => h.held);
  gauge("billing_invoices_charge_held_overdue", "Open invoices whose charge has been held longer than BILLING_CHARGE_HOLD_OVERDUE_DAYS (read from PostgreSQL at scrape time)", (h) => h.overdue);
  // No sample while nothing is held: an age of 0 would read as a hold just made.
  gauge("billing_invoice_charge_held_oldest_seconds", "Age of the oldest held charge of an open invoice, in seconds; no sample when none is held", (h) => h.oldestAgeSeconds);
}
