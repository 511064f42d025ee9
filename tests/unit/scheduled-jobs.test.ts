/**
 * The pure parts of the scheduled jobs' alerting: the overdue threshold derived from a cron schedule
 * (components/monitoring/scheduled-jobs.ts), the failure code a run records and which command is
 * the service's scheduled job (services/src/kit/scheduled-job-runs.ts). The rules' behaviour on
 * series: config-tools.test.ts (promtool test rules); against real PostgreSQL:
 * tests/services/scheduled-job-runs.test.ts.
 */
import { describe, expect, it } from "vitest";
import { catalog, findService } from "../../catalog";
import {
  DEFAULT_RUN_TIMEOUT_SECONDS,
  longestGapSeconds,
  OVERDUE_MARGIN_SECONDS,
  overdueAfterSeconds,
  RUN_UNFINISHED_MARGIN_SECONDS,
  runTimeoutSeconds,
  runUnfinishedAfterSeconds,
  scheduledJobRules,
  shortestGapSeconds,
} from "../../components/monitoring/scheduled-jobs";
import { HttpError } from "../../services/src/kit/errors";
import { failureCode, scheduledJobOf } from "../../services/src/kit/scheduled-job-runs";

describe("overdue threshold from the cron schedule", () => {
  it("is the longest gap between ticks, weekends and month ends included", () => {
    expect(longestGapSeconds("30 3 * * *")).toBe(86_400);
    expect(longestGapSeconds("0 */6 * * *")).toBe(6 * 3_600);
    // Friday 09:00 to Monday 09:00.
    expect(longestGapSeconds("0 9 * * 1-5")).toBe(3 * 86_400);
    // 08:00 and 20:00: the night is the longer gap.
    expect(longestGapSeconds("0 8,20 * * *")).toBe(12 * 3_600);
    // 31 January to 1 March (2026 is not a leap year): 29 days.
    expect(longestGapSeconds("0 0 1 * *")).toBe(31 * 86_400);
    expect(longestGapSeconds("0 0 31 * *")).toBe(61 * 86_400);
  });

  it("allows two intervals and a margin; refuses a schedule without an interval", () => {
    expect(overdueAfterSeconds("30 3 * * *")).toBe(2 * 86_400 + OVERDUE_MARGIN_SECONDS);
    expect(overdueAfterSeconds("0 9 * * 1-5")).toBe(6 * 86_400 + OVERDUE_MARGIN_SECONDS);
    expect(() => longestGapSeconds("0 0 30 2 *")).toThrow(/never fires|at most once/);
    expect(() => longestGapSeconds("not a schedule")).toThrow();
  });

  it("renders one overdue, one never-succeeded and one unfinished-run rule per job, named and bounded by its schedule and time limit", () => {
    const rules = scheduledJobRules([{ name: "ml-predictor-retrain", schedule: "30 3 * * *", runTimeoutSeconds: 3_600 }]);
    expect(rules.map((r) => r.alert)).toEqual(["ScheduledJobOverdue", "ScheduledJobNeverSucceeded", "ScheduledJobRunUnfinished"]);
    expect(rules[0].expr).toBe('time() - max by (scheduled_job) (scheduled_job_last_success_timestamp_seconds{scheduled_job="ml-predictor-retrain"}) > 176400');
    expect(rules[1]).toMatchObject({ expr: 'absent(scheduled_job_last_success_timestamp_seconds{scheduled_job="ml-predictor-retrain"})', for: "49h" });
    expect(rules[0].summary).toContain("49h (2 intervals of '30 3 * * *' + 1h)");
    const start = 'max by (scheduled_job) (scheduled_job_last_start_timestamp_seconds{scheduled_job="ml-predictor-retrain"})';
    expect(rules[2]).toMatchObject({
      expr:
        `time() - ${start} > 4200` +
        ` unless on (scheduled_job) (max by (scheduled_job) (scheduled_job_last_success_timestamp_seconds{scheduled_job="ml-predictor-retrain"}) >= on (scheduled_job) ${start})` +
        ` unless on (scheduled_job) (max by (scheduled_job) (scheduled_job_last_failure_timestamp_seconds{scheduled_job="ml-predictor-retrain"}) >= on (scheduled_job) ${start})`,
      for: "0m",
    });
    expect(rules[2].summary).toContain("more than 70m ago (its 1h time limit + 10m)");
    expect(scheduledJobRules([])).toEqual([]);
  });
});

describe("the time limit of a run", () => {
  it("the shortest gap between ticks", () => {
    expect(shortestGapSeconds("30 3 * * *")).toBe(86_400);
    expect(shortestGapSeconds("0 8,20 * * *")).toBe(12 * 3_600);
    expect(shortestGapSeconds("0 9,10 * * *")).toBe(3_600);
    expect(shortestGapSeconds("*/20 * * * 1-5")).toBe(1_200);
  });

  it("is the catalog's (default 1 h), at most half the shortest gap, so a stopped run ends before the next tick", () => {
    expect(DEFAULT_RUN_TIMEOUT_SECONDS).toBe(3_600);
    expect(runTimeoutSeconds("30 3 * * *")).toBe(3_600);
    expect(runTimeoutSeconds("30 3 * * *", 7_200)).toBe(7_200);
    expect(runTimeoutSeconds("30 3 * * *", 86_400)).toBe(43_200);
    // Every 20 minutes on weekdays (the retraining test's stack): 10 minutes.
    expect(runTimeoutSeconds("*/20 * * * 1-5")).toBe(600);
    expect(runTimeoutSeconds("* * * * *")).toBe(30);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => runTimeoutSeconds("30 3 * * *", bad)).toThrow(/positive whole number/);
  });

  it("a run with no recorded end is reported its time limit plus a margin after its start", () => {
    expect(RUN_UNFINISHED_MARGIN_SECONDS).toBe(600);
    expect(runUnfinishedAfterSeconds(3_600)).toBe(4_200);
    expect(runUnfinishedAfterSeconds(600)).toBe(1_200);
  });
});

describe("the record of a run", () => {
  it("a failure's code is an exit code, an upper-case code or a class name, never a message", () => {
    expect(failureCode({ exitCode: 3 })).toBe("EXIT_3");
    expect(failureCode({ error: Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:5432"), { code: "ECONNREFUSED" }) })).toBe("ECONNREFUSED");
    expect(failureCode({ error: new HttpError(503, "MODEL_STORE_DOWN", "the peer said: secret=abc") })).toBe("MODEL_STORE_DOWN");
    expect(failureCode({ error: Object.assign(new Error("x"), { code: "23505" }) })).toBe("23505");
    // A code that is not a code (free text, lower case) is not recorded: the class name is.
    expect(failureCode({ error: Object.assign(new TypeError("x"), { code: "password hunter2" }) })).toBe("TypeError");
    expect(failureCode({ error: "a thrown string with a token" })).toBe("ERROR");
    expect(failureCode({ error: { message: "plain object" } })).toBe("ERROR");
    expect(failureCode({ error: null })).toBe("ERROR");
  });

  it("only the catalog's scheduled job command is recorded", () => {
    const ml = findService("ml-predictor")!;
    expect(scheduledJobOf(ml, ["train"])).toBe("ml-predictor-retrain");
    expect(scheduledJobOf(ml, ["train", "--extra"])).toBeUndefined();
    expect(scheduledJobOf(ml, ["other"])).toBeUndefined();
    expect(scheduledJobOf(findService("database-service")!, ["migrate"])).toBeUndefined();
    expect(catalog.filter((s) => s.scheduledJob).length).toBeGreaterThan(0);
  });
});
