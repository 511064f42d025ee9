/**
 * Every shell script of the repo passes `shellcheck -x` (Debian's shellcheck 0.9.0, installed by
 * scripts/deps/install-test-deps.sh) with the repo's .shellcheckrc: sourced files are followed from the
 * script's own folder, so a script is checked with the libraries it sources. A finding fails the test; a
 * script that must differ says so beside a `# shellcheck disable=` with its reason.
 *
 * The scripts are found as a newcomer's new one would be, not from a list: every file git sees (tracked,
 * or new and not ignored: no node_modules, no staged Kafka distribution) that is named *.sh, or begins
 * with a shell's #! line (.ci/run) or shellcheck's `# shellcheck shell=` directive. A copy without .git
 * (a tarball of the repo, an export) is read by the same program: git lists its files through an
 * empty repository of its own, so the copy's .gitignore files leave out what a checkout's would
 * (until session 65 the test needed a checkout, and failed on a tarball before checking a script).
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { run, runOk, type RunResult } from "../harness/run";

const root = join(__dirname, "..", "..");
/** shellcheck over some 50 scripts takes ~10 s on a quiet machine; the suite's machine is seldom quiet. */
const LINT_MS = 5 * 60_000;

/** A shell's #! line (sh, bash, dash, ksh; by its path or through env), or shellcheck's shell directive. */
const SHELL_HEAD = /^(?:#!\s*\S*\/(?:env\s+(?:-\S+\s+)*)?(?:ba|da|k)?sh(?:\s|$)|# shellcheck shell=)/;

/** The first line of a file (its first 200 bytes: enough for a #! line, without reading a large file whole). */
function firstLine(path: string): string {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(200);
    return head.subarray(0, readSync(fd, head, 0, head.length, 0)).toString("utf8").split("\n")[0];
  } finally {
    closeSync(fd);
  }
}

const split = (nulSeparated: string): string[] => nulSeparated.split("\0").filter((f) => f !== "");

/**
 * The files git sees in `dir`, by their paths from it: a checkout's tracked and new files that are not
 * ignored; in a copy without .git, every file its .gitignore files (and git's own global excludes) do
 * not leave out, listed as new files beside an empty repository made for the listing.
 */
async function filesGitSees(dir: string): Promise<string[]> {
  // safe.directory: a checkout owned by another user (a CI container's root over a mounted clone) is read all the same.
  if (existsSync(join(dir, ".git"))) return split(await runOk("git", ["-c", `safe.directory=${dir}`, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: dir }));
  const empty = mkdtempSync(join(tmpdir(), "shellcheck-index-"));
  try {
    await runOk("git", ["init", "-q", "--bare", empty]);
    return split(await runOk("git", ["-c", "safe.directory=*", `--git-dir=${empty}`, `--work-tree=${dir}`, "ls-files", "-z", "--others", "--exclude-standard"], { cwd: dir }));
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

/** The shell scripts of the repository (a checkout, or a copy without .git) at `dir`, by their paths from it, sorted. */
async function shellScripts(dir: string): Promise<string[]> {
  return (await filesGitSees(dir))
    .filter((f) => {
      const stat = statSync(join(dir, f), { throwIfNoEntry: false }); // deleted, not yet staged: gone
      return stat?.isFile() && (f.endsWith(".sh") || SHELL_HEAD.test(firstLine(join(dir, f))));
    })
    .sort();
}

/** shellcheck -x over `scripts` from `dir`, one finding a line (file:line:column: level: text [SCnnnn]). */
async function lint(dir: string, scripts: string[]): Promise<RunResult> {
  const r = await run("shellcheck", ["-x", "-f", "gcc", "--", ...scripts], { cwd: dir, timeoutMs: LINT_MS });
  if (r.error) throw new Error(`shellcheck did not run (${r.error.message}): scripts/deps/install-test-deps.sh installs it (Debian package shellcheck)`);
  return r;
}

describe("shell scripts", () => {
  const scratch = mkdtempSync(join(tmpdir(), "shellcheck-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** The finder's tree: scripts by name, #! line and directive, files that are none, and what .gitignore leaves out. */
  const finderTree: Record<string, string> = {
    "tracked.sh": "#!/usr/bin/env bash\necho tracked\n",
    "scripts/new-tool.sh": "#!/usr/bin/env bash\necho new\n", // a newcomer's, not yet added
    ".ci/run": "#!/usr/bin/env bash\nnpm test\n",
    "bin/posix": "#!/bin/sh -e\necho posix\n",
    "bin/env-flags": "#!/usr/bin/env -S bash -eu\necho flags\n",
    "lib/sourced": "# shellcheck shell=bash\nx=1\n",
    "tools/run.py": "#!/usr/bin/env python3\nprint('no shell')\n",
    "bin/shuffle": "#!/usr/bin/env shuf\n",
    "README.md": "A script begins with #!/bin/sh; this file does not.\n",
    "node_modules/pkg/install.sh": "#!/bin/sh\necho ignored\n",
    "images/kafka/.stage/bin/kafka-run-class.sh": "#!/bin/bash\necho ignored\n",
    "services/.npm-cache/_cacache/hook.sh": "#!/bin/sh\necho ignored\n", // left out by a .gitignore of its folder
    ".gitignore": "node_modules\nimages/*/.stage/\n",
    "services/.gitignore": ".npm-cache/\n",
  };
  const finderScripts = [".ci/run", "bin/env-flags", "bin/posix", "lib/sourced", "scripts/new-tool.sh", "tracked.sh"];
  const writeTree = (dir: string, files: Record<string, string>) => {
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(join(dir, f, ".."), { recursive: true });
      writeFileSync(join(dir, f), text);
    }
  };

  it("are found as a new one would be: tracked or new, by name or #! line, never what git ignores", async () => {
    const dir = join(scratch, "finder");
    writeTree(dir, finderTree);
    await runOk("git", ["init", "-q"], { cwd: dir });
    await runOk("git", ["add", "tracked.sh", ".gitignore"], { cwd: dir });
    expect(await shellScripts(dir)).toEqual(finderScripts);
  });

  it("are found the same in a copy without .git (a tarball): by its .gitignore files, none ignored, none lost", async () => {
    const dir = join(scratch, "tarball");
    writeTree(dir, finderTree);
    expect(existsSync(join(dir, ".git"))).toBe(false);
    expect(await shellScripts(dir)).toEqual(finderScripts);
  });

  it("of this repo are found in its tarball too (git archive, no .git), never what its .gitignore files leave out", async () => {
    // Run from a tarball itself, the repo is that copy already (and its installs are real ones).
    const fromCheckout = existsSync(join(root, ".git"));
    const dir = fromCheckout ? join(scratch, "repo-tarball") : root;
    if (fromCheckout) {
      mkdirSync(dir);
      const tar = join(scratch, "repo.tar");
      await runOk("git", ["-c", `safe.directory=${root}`, "archive", "--format=tar", "-o", tar, "HEAD"], { cwd: root });
      await runOk("tar", ["-xf", tar, "-C", dir]);
      // What an unpacked copy gathers once installed and built: none of it is the repo's.
      writeTree(dir, { "node_modules/pkg/install.sh": "#!/bin/sh\n", "services/.npm-cache/_cacache/x.sh": "#!/bin/sh\n", "images/kafka/.stage/bin/kafka-run-class.sh": "#!/bin/bash\n", ".tools/bin/tool.sh": "#!/bin/sh\n" });
    }
    const scripts = await shellScripts(dir);
    for (const f of [".ci/run", "scripts/test.sh", "scripts/cluster/lib.sh", "scripts/lib/steps.sh", "images/lib/file-env.sh", "services/scripts/build-image.sh"]) expect(scripts, f).toContain(f);
    expect(scripts.filter((f) => /node_modules\/|\.npm-cache\/|\.stage\/|^\.tools\//.test(f))).toEqual([]);
  });

  it("of this repo are found: scripts/, .ci/run, the images' entry points, the libraries", async () => {
    const scripts = await shellScripts(root);
    for (const f of [".ci/run", "scripts/test.sh", "scripts/cluster/lib.sh", "scripts/lib/steps.sh", "images/lib/file-env.sh", "services/scripts/build-image.sh"]) {
      expect(scripts, f).toContain(f);
    }
    expect(scripts.filter((f) => f.includes("node_modules/"))).toEqual([]);
  });

  it("a finding fails the check, and a script is checked with what it sources, from any folder", async () => {
    const dir = join(scratch, "findings");
    mkdirSync(join(dir, "lib"), { recursive: true });
    copyFileSync(join(root, ".shellcheckrc"), join(dir, ".shellcheckrc"));
    writeFileSync(join(dir, "lib", "greeting.sh"), "# shellcheck shell=bash\ngreeting=hello\n");
    // Not followed, greeting would be "referenced but not assigned" (SC2154).
    writeFileSync(join(dir, "clean.sh"), '#!/usr/bin/env bash\n# shellcheck source=lib/greeting.sh\nsource "$(dirname "$0")/lib/greeting.sh"\necho "$greeting"\n');
    writeFileSync(join(dir, "unquoted.sh"), "#!/usr/bin/env bash\nrm $1\n");
    const clean = await lint(scratch, ["findings/clean.sh"]);
    expect(clean.stdout + clean.stderr).toBe("");
    expect(clean.status).toBe(0);
    const unquoted = await lint(dir, ["clean.sh", "unquoted.sh"]);
    expect(unquoted.stdout).toMatch(/^unquoted\.sh:2:4: .*\[SC2086\]$/m);
    expect(unquoted.stdout).not.toContain("clean.sh");
    expect(unquoted.status).not.toBe(0);
  });

  it("pass shellcheck -x, every one", async () => {
    const scripts = await shellScripts(root);
    const r = await lint(root, scripts);
    expect(r.stdout + r.stderr, `${scripts.length} scripts`).toBe("");
    expect(r.status).toBe(0);
  }, LINT_MS + 60_000);
});
