/**
 * Session 64c: job-active-deadlines held the Kubernetes Job to a time limit but not the Docker target's one-shot run: a
 * container with `attach: true` (the create waits for its exit: the program's migrations) and no `attachTimeout`, or one
 * far past the Jobs' bound, passed the pack, and a stuck run held `pulumi up` and the stack's lock forever. Each refusal
 * case passed the pack before its fix. (Case, what happened, the fix: policies/README.md "Red team, session 64c".)
 */
import { describe, expect, it } from "vitest";
import { ONE_SHOT_JOB_DEADLINE_SECONDS } from "../../components/workload";
import { MAX_ACTIVE_DEADLINE_SECONDS } from "../../policies/rules/job-active-deadlines";
import { runProgram } from "../helpers/program";
import { devStack, dockerContainer } from "./fixtures";
import { runPack, TestResource, UNKNOWN } from "./run-pack";

const messages = async (rs: TestResource[], config: Parameters<typeof runPack>[1] = "prod") =>
    (await runPack(rs, config, { only: ["job-active-deadlines"] })).map((v) => v.message);

/** A one-shot container as components/runtime/docker.ts declares a migration's, its attachTimeout replaced (undefined: left out). */
const oneShot = (name: string, attachTimeout?: unknown, extra: Record<string, unknown> = {}): TestResource => {
    const r = dockerContainer(name, "job", {
        healthcheck: undefined, restart: "no", mustRun: false, attach: true, logs: true, destroyGraceSeconds: 30, ...extra,
    });
    if (attachTimeout === undefined) delete r.props.attachTimeout; else r.props.attachTimeout = attachTimeout;
    return r;
};

const FIX = (max = MAX_ACTIVE_DEADLINE_SECONDS) => `set it to the longest a run may take (the platform's migrations: 1 h), at most ${max} seconds.`;
const NONE = "has no attachTimeout: a run stuck (a lock never released, a peer that never answers, a hung write) holds its container, its " +
    "connections and its credentials, and `pulumi up` with the stack's lock (attach: the create waits for its exit), forever";

describe("job-active-deadlines: a Docker one-shot run (attach) has an attachTimeout, under the Jobs' bound", () => {
    it("rejects an attached container without attachTimeout, with one above 12 h, and with one no whole positive number of seconds", async () => {
        expect(await messages([oneShot("migrate"), oneShot("week", 604_800), oneShot("text", "3600"), oneShot("zero", 0), oneShot("half", 1.5),
            oneShot("null", null)])).toEqual([
            `Container "migrate-container" ${NONE}; ${FIX()}`,
            `Container "week-container" has attachTimeout 604800, above 43200 seconds: a run going on that long is stuck, and a limit past it is none; ${FIX()}`,
            `Container "text-container" has attachTimeout "3600", not a positive whole number of seconds; ${FIX()}`,
            `Container "zero-container" has attachTimeout 0, not a positive whole number of seconds; ${FIX()}`,
            `Container "half-container" has attachTimeout 1.5, not a positive whole number of seconds; ${FIX()}`,
            `Container "null-container" ${NONE}; ${FIX()}`,
        ]);
    });

    it("holds both targets to one bound: the configured maxActiveDeadlineSeconds bounds attachTimeout too", async () => {
        const config = { all: "mandatory" as const, "job-active-deadlines": { maxActiveDeadlineSeconds: 1_800 } };
        expect(await messages([oneShot("hour", 3_600), oneShot("half-hour", 1_800)], config)).toEqual([
            `Container "hour-container" has attachTimeout 3600, above 1800 seconds: a run going on that long is stuck, and a limit past it is none; ${FIX(1_800)}`,
        ]);
        // The program's one-shot limit is within the pack's default bound (the Job's activeDeadlineSeconds is the same constant).
        expect(ONE_SHOT_JOB_DEADLINE_SECONDS).toBeLessThanOrEqual(MAX_ACTIVE_DEADLINE_SECONDS);
    });

    it("passes the program's hour, 12 h exactly, a limit or an attach unknown during preview, and containers not waited for", async () => {
        expect(await messages([...devStack(), oneShot("migrate", 3_600), oneShot("half-day", 43_200), oneShot("later", UNKNOWN),
            oneShot("attach-later", undefined, { attach: UNKNOWN }), oneShot("detached", undefined, { attach: false }),
            oneShot("unset", undefined, { attach: undefined })])).toEqual([]);
    });

    it("the real dev program: its migration containers are attached with the hour, and the rule reports nothing (mandatory)", async () => {
        const run = await runProgram("dev");
        const resources: TestResource[] = run.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.inputs }));
        const attached = resources.filter((r) => r.type === "docker:index/container:Container" && r.props.attach === true);
        expect(attached.length).toBeGreaterThan(0);
        expect(attached.map((r) => [r.name, r.props.attachTimeout])).toEqual(attached.map((r) => [r.name, ONE_SHOT_JOB_DEADLINE_SECONDS]));
        expect(await messages(resources, "prod")).toEqual([]);
        expect(await messages(resources, "dev")).toEqual([]);
    });
});
