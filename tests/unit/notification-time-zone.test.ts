/**
 * notification-service saves and answers a time zone in Intl's spelling (domain.ts canonicalTimeZone): a name in any
 * case was saved as the client spelled it (`europe/berlin`, `utc`) and answered back so. Intl reads a name in any case,
 * so a row saved before still places quiet hours where the zone's own name does. (On real PostgreSQL through the routes:
 * tests/business/notification-service.test.ts "a time zone in any case...".)
 */
import { describe, expect, it } from "vitest";
import { canonicalTimeZone, deliverAfter, localMinutes } from "../../services/src/services/notification-service/domain";

describe("notification-service time zones", () => {
  it.each([
    ["europe/berlin", "Europe/Berlin"],
    ["EUROPE/BERLIN", "Europe/Berlin"],
    ["Europe/Berlin", "Europe/Berlin"],
    ["utc", "UTC"],
    ["UTC", "UTC"],
    ["america/new_york", "America/New_York"],
    ["australia/lord_howe", "Australia/Lord_Howe"],
    ["etc/gmt+1", "Etc/GMT+1"],
  ])("%s is saved and answered as %s", (given, canonical) => {
    expect(canonicalTimeZone(given)).toBe(canonical);
    // Idempotent: the answer, sent back, is saved as it is.
    expect(canonicalTimeZone(canonical)).toBe(canonical);
  });

  // A link Intl names by another id (Node 20's ICU: CLDR's older ids) is kept as sent: the same zone, and never a name
  // the client did not send (Asia/Kolkata was answered Asia/Calcutta before the review).
  it.each(["Asia/Kolkata", "Europe/Kyiv", "US/Pacific", "Etc/UTC", "asia/kolkata"])("the link %s is saved as sent", (given) => {
    expect(canonicalTimeZone(given)).toBe(given);
    expect(localMinutes(new Date("2026-06-01T12:00:00Z"), given)).toBeTypeOf("number");
  });

  it.each(["Mars/Olympus", "", " UTC", "UTC ", "+01:00", "Europe/Berlin\u0000", "Europe//Berlin"])("%j is no time zone", (given) => {
    expect(canonicalTimeZone(given)).toBeUndefined();
  });

  it("a zone saved before in the client's spelling places quiet hours as its canonical name does", () => {
    const now = new Date("2026-03-28T21:30:00Z");
    const quiet = { start: "22:00", end: "07:00" };
    expect(localMinutes(now, "europe/berlin")).toBe(localMinutes(now, "Europe/Berlin"));
    expect(deliverAfter(now, quiet, "europe/berlin").toISOString()).toBe(deliverAfter(now, quiet, "Europe/Berlin").toISOString());
    expect(deliverAfter(now, quiet, "europe/berlin").toISOString()).toBe("2026-03-29T05:00:00.000Z");
  });
});
