/**
 * The services' stdout log destination (services/src/kit/log-destination.ts): each event-loop turn's
 * lines written together, in order, at the turn's end; what cannot be written at once handed to
 * pino's asynchronous destination, later lines after it; and a line logged just before
 * process.exit written (a real service process's "shut down cleanly" is logged so).
 */
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { asyncDestination, TurnBatchedDestination } from "../../services/src/kit/log-destination";

const dir = mkdtempSync(join(tmpdir(), "log-destination-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = () => {
  const path = join(dir, `out-${files++}.log`);
  return { path, fd: openSync(path, "w"), text: () => readFileSync(path, "utf8") };
};
const turn = () => new Promise((r) => setImmediate(r));

describe("the services' stdout log destination", () => {
  it("writes a turn's lines together at the turn's end, in order, turn after turn", async () => {
    const out = newFile();
    const d = new TurnBatchedDestination(out.fd, asyncDestination(out.fd));
    d.write("a\n");
    d.write("b\n");
    expect(out.text()).toBe("");
    await turn();
    expect(out.text()).toBe("a\nb\n");
    d.write("c\n");
    await turn();
    expect(out.text()).toBe("a\nb\nc\n");
    closeSync(out.fd);
  });

  it("hands what it cannot write to pino's asynchronous destination, and the next lines after it", async () => {
    const out = newFile();
    // A descriptor that refuses every write (closed): each turn's lines go to the fallback, on `out`.
    const refusing = newFile();
    closeSync(refusing.fd);
    const fallback = asyncDestination(out.fd);
    const d = new TurnBatchedDestination(refusing.fd, fallback);
    d.write("1\n");
    await turn();
    d.write("2\n");
    d.write("3\n");
    await turn();
    await expect.poll(() => out.text()).toBe("1\n2\n3\n");
    closeSync(out.fd);
  });

  it("writes the lines held when the process exits (a line logged just before process.exit)", async () => {
    const module = join(__dirname, "..", "..", "services", "src", "kit", "app.ts");
    const script = `
      const { createLogger } = require(${JSON.stringify(module)});
      const log = createLogger("exit-test", "info");
      setTimeout(() => { log.info("first"); setImmediate(() => { log.info("second"); log.info("last before exit"); process.exit(0); }); }, 10);
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout!.on("data", (c) => (stdout += c));
    const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
    expect(code).toBe(0);
    const messages = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).msg);
    expect(messages).toEqual(["first", "second", "last before exit"]);
  });
});
