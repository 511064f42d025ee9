/**
 * The one venv implementation (scripts/lib/python-venv.sh) as the harness sees it: no interpreter
 * means a skip with the reason, bad usage fails naming it. (Real venvs are made by the tests that
 * need them: the backtrader oracle, the ML tests.)
 */
import { afterEach, describe, expect, it } from "vitest";
import { pythonVenv } from "../harness/python";

const saved = process.env.PYTHON;
afterEach(() => {
  if (saved === undefined) delete process.env.PYTHON;
  else process.env.PYTHON = saved;
});

describe("pythonVenv", () => {
  it("skips, saying why, where there is no Python interpreter", async () => {
    process.env.PYTHON = "/nonexistent/python3";
    const venv = await pythonVenv("no-python", ["backtrader==1.9.78.123"], 60_000);
    expect(venv).toEqual({ skipped: expect.stringContaining("no Python interpreter (/nonexistent/python3)") });
  });

  it("rejects a name that is no folder name", async () => {
    await expect(pythonVenv("../escape", ["x==1"], 60_000)).rejects.toThrow(/invalid venv name/);
  });
});
