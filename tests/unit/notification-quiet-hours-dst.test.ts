/**
 * notification-service's quiet hours across a DST change (domain.ts deliverAfter). The wait to the
 * window's end was counted in minutes of the clock at `now`: the night clocks go forward, quiet hours of
 * 01:00-04:00 held a notice until 05:00, and the night they go back, let it out at 03:00, inside them
 * (session 64b). Zones north and south, and one whose change is half an hour (Lord Howe).
 */
import { describe, expect, it } from "vitest";
import { deliverAfter, localMinutes } from "../../services/src/services/notification-service/domain";

const wall = (at: Date, tz: string) => {
  const m = localMinutes(at, tz);
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
};
const quiet = (start: string, end: string) => ({ start, end });

describe("quiet hours across a DST change end at their end on the wall clock", () => {
  it.each([
    // [zone, now (UTC), window, expected release (UTC), its wall-clock time]
    ["Europe/Berlin", "2026-03-29T00:30:00Z", quiet("01:00", "04:00"), "2026-03-29T02:00:00.000Z", "04:00"],
    ["Europe/Berlin", "2026-10-24T23:30:00Z", quiet("01:00", "04:00"), "2026-10-25T03:00:00.000Z", "04:00"],
    ["Europe/Berlin", "2026-03-28T21:30:00Z", quiet("22:00", "07:00"), "2026-03-29T05:00:00.000Z", "07:00"],
    ["Europe/Berlin", "2026-10-24T20:30:00Z", quiet("22:00", "07:00"), "2026-10-25T06:00:00.000Z", "07:00"],
    ["America/New_York", "2026-03-08T06:00:00Z", quiet("00:00", "06:00"), "2026-03-08T10:00:00.000Z", "06:00"],
    ["America/New_York", "2026-11-01T04:30:00Z", quiet("00:00", "06:00"), "2026-11-01T11:00:00.000Z", "06:00"],
    ["Australia/Sydney", "2026-04-04T14:30:00Z", quiet("01:00", "05:00"), "2026-04-04T19:00:00.000Z", "05:00"],
    ["Australia/Lord_Howe", "2026-10-03T14:45:00Z", quiet("01:00", "04:00"), "2026-10-03T17:00:00.000Z", "04:00"],
  ])("%s at %s, quiet %o: released at %s", (tz, now, q, at, local) => {
    const out = deliverAfter(new Date(now), q, tz);
    expect(out.toISOString()).toBe(at);
    expect(wall(out, tz)).toBe(local);
  });

  it("an end the change skips (02:30 the night clocks go from 02:00 to 03:00) releases at the change, 03:00", () => {
    const out = deliverAfter(new Date("2026-03-29T00:30:00Z"), quiet("23:00", "02:30"), "Europe/Berlin");
    expect([out.toISOString(), wall(out, "Europe/Berlin")]).toEqual(["2026-03-29T01:00:00.000Z", "03:00"]);
  });

  it("an end in the hour the change repeats is its first occurrence; no change, as before", () => {
    const out = deliverAfter(new Date("2026-10-24T23:30:00Z"), quiet("01:00", "02:30"), "Europe/Berlin");
    expect([out.toISOString(), wall(out, "Europe/Berlin")]).toEqual(["2026-10-25T00:30:00.000Z", "02:30"]);
    expect(deliverAfter(new Date("2026-01-15T22:30:00Z"), quiet("22:00", "07:00"), "Europe/Berlin").toISOString()).toBe("2026-01-16T06:00:00.000Z");
    expect(deliverAfter(new Date("2026-01-15T22:30:00Z"), quiet("22:00", "07:00"), "UTC").toISOString()).toBe("2026-01-16T07:00:00.000Z");
  });
});
