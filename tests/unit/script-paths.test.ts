/**
 * Session 62: a clone whose path holds a space and a non-ASCII letter ("/tmp/h3 clone/ré po"). The scripts
 * the README's commands call must keep such a path whole: no path word-split by `xargs` or `for x in $(find)`,
 * no unquoted `cd $(dirname ...)`, no folder pasted unescaped into a sed replacement. shellcheck
 * (tests/unit/shellcheck.test.ts) does not look for these forms, so this reads the scripts for them, and runs the
 * one function that had the bug (scripts/cluster/build.sh addon_key: every addon's key was that of no patches).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(__dirname, "..", "..");

/** Every shell script of scripts/ and .ci/run, by its path from the root. */
function shellScripts(): string[] {
  const out: string[] = [join(root, ".ci", "run")];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".sh")) out.push(path);
    }
  };
  walk(join(root, "scripts"));
  return out;
}

/** The script's command lines (comments dropped), with their numbers. */
function commandLines(path: string): { line: string; at: string }[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .map((line, i) => ({ line: line.replace(/^\s*#.*$/, ""), at: `${relative(root, path)}:${i + 1}` }))
    .filter(({ line }) => line.trim() !== "");
}

const forms: [string, RegExp][] = [
  // find's paths through xargs: split at white space unless both ends speak NUL.
  ["find | xargs without -print0 / -0", /\bfind\b(?![^|]*-print0)[^|]*\|(?:[^|]*\|)*\s*xargs\b(?!\s+(?:-\S+\s+)*-0)/],
  // (A find whose output is cut down to numbers, e.g. pids, is no path.)
  ["for over $(find ...), split at white space", /\bfor\s+\w+\s+in\s+\$\(\s*find\b[^|)]*\)/],
  ["cd $(dirname ...) unquoted", /\bcd\s+(?:--\s+)?\$\((?:dirname|realpath)\b/],
  ["$(dirname $0) with $0 unquoted", /dirname\s+\$(?:0|\{?BASH_SOURCE)/],
  // A folder in a sed replacement: '#', '&' or '\' in it change the command (escape it first).
  ["a folder variable pasted into a sed replacement", /\bsed\s+(?:-\w+\s+)*"s(.)[^"]*\1[^"]*\$\{?[A-Z0-9_]*(?:DIR|CACHE|ROOT|HERE|PATH|HOME)\b/],
  // Session 63: a path used as a pattern, where '*', '?', '[' (a glob) or '.', '(' (a regular expression) in the
  // clone's or the cache's path match other files or none. Compare as text instead (awk ==, index, grep -F, quotes).
  // A value anywhere in the pattern too: addon_key's -path "./$1*" took a name as a glob (session 64).
  ["a path as find's pattern (-name, -path, -lname, -regex)", /\bfind\b.*\s-(?:i?name|i?path|i?lname|i?wholename|i?regex)\s+"?[^"\s]*\$/],
  ["a variable as a parameter expansion's pattern, unquoted", /\$\{\w+(?:##?|%%?|\/\/?)\$/],
  ["a path variable in a grep pattern without -F", /\bgrep\s+(?:-(?![a-zA-Z]*F)[a-zA-Z]+\s+|--\s+)*(?:-e\s+)?"[^"]*\$\{?\w*(?:DIR|CACHE|ROOT|HOME|PATH|FILE|SOCK|STATE|LOCK)\b/],
];

describe("scripts keep a clone path with a space or a non-ASCII letter whole (session 62)", () => {
  it("no script word-splits a path, cds into an unquoted $(dirname), or pastes a folder into sed", () => {
    const found: string[] = [];
    for (const script of shellScripts()) {
      for (const { line, at } of commandLines(script)) {
        for (const [what, form] of forms) if (form.test(line)) found.push(`${at}: ${what}: ${line.trim()}`);
      }
    }
    expect(found).toEqual([]);
  });

  it("the forms are recognised (each of the old lines is found)", () => {
    const old = [
      'h=$(find "$PATCHES" -type f -path "$PATCHES/$1*" | sort | xargs -r cat | sha256sum | cut -c1-12)',
      'h=$(cd "$PATCHES" && find . -type f -path "./$1*" -print0 | sort -z | xargs -0 -r cat | sha256sum | cut -c1-12)',
      'sed "s#@LOCAL_PATH_DIR@#$K8S_CACHE/volumes#" "$m/$name.yaml"',
      "cd $(dirname \"$0\")",
      "for f in $(find . -name '*.yaml'); do",
      'for p in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "$1" 2>/dev/null | cut -d/ -f3 | sort -un); do',
      'echo "[npm-install] npm ci in ${dir#$ROOT/}" >&2',
      'm=$(grep -cE " ($RUN_DIR|/run/ai-trading-k8s|/run/netns/cni-)" /proc/mounts)',
      'tr "\\0" " " <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK" || continue',
    ];
    for (const line of old) expect(forms.some(([, form]) => form.test(line)), line).toBe(true);
    const fixed = [
      'h=$(cd "$PATCHES" && find . -type f -print0 | sort -z |',
      `sed "s#@LOCAL_PATH_DIR@#$(printf '%s' "$K8S_CACHE/volumes" | sed 's/[#&\\\\]/\\\\&/g')#" "$m/$name.yaml"`,
      'cd "$(dirname "${BASH_SOURCE[0]}")/.."',
      'echo "[npm-install] npm ci in ${dir#"$ROOT/"}" >&2',
      "m=$(mounts_under \"$RUN_DIR\" /run/ai-trading-k8s /run/netns/cni- | tr -cd '\\0' | wc -c)",
      'tr "\\0" " " <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-address $CONTAINERD_SOCK" || continue',
    ];
    for (const line of fixed) expect(forms.some(([, form]) => form.test(line)), line).toBe(false);
  });

  describe("scripts/cluster/build.sh addon_key", () => {
    const scratch = mkdtempSync(join(tmpdir(), "addon-key-"));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));
    const build = readFileSync(join(root, "scripts", "cluster", "build.sh"), "utf8");
    const fn = /^addon_key\(\) \{\n[\s\S]*?\n\}\n/m.exec(build)?.[0] ?? "";

    /** addon_key's output for NAME with the repo's patches copied under `folder`. */
    const key = (folder: string, name: string): string => {
      const patches = join(scratch, folder, "patches");
      mkdirSync(join(scratch, folder), { recursive: true });
      cpSync(join(root, "scripts", "cluster", "patches"), patches, { recursive: true });
      const run = spawnSync("bash", ["-c", `set -euo pipefail\n${fn}\naddon_key "$1" v1`, "addon-key", name], { env: { ...process.env, PATCHES: patches }, encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      return run.stdout;
    };

    it("gives the same key in a clone whose path holds a space and 'é' as in a plain one, and not that of no patches", () => {
      expect(fn).toContain("addon_key()");
      for (const name of ["kube-network-policies", "traefik"]) {
        const plain = key("plain", name);
        expect(key("h3 clone/ré po [1]", name), name).toBe(plain);
        expect(plain, name).not.toBe(key("plain", "no-such-addon"));
      }
    });
  });
});

describe("paths with glob and regular-expression characters are compared as text (session 63)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "glob-paths-"));
  const holders: ChildProcess[] = [];
  afterAll(() => {
    for (const holder of holders) holder.kill("SIGKILL");
    rmSync(scratch, { recursive: true, force: true });
  });

  /** A process (not a child of the shell that asks) holding `file` open, as another run holds a lock. */
  const hold = async (file: string): Promise<number> => {
    const holder = spawn("bash", ["-c", 'exec 3>>"$1"; echo ready; exec sleep 60', "hold", file], { stdio: ["ignore", "pipe", "inherit"] });
    holders.push(holder);
    await new Promise((resolve) => holder.stdout!.once("data", resolve));
    return holder.pid!;
  };

  /**
   * mounts_under of scripts/cluster/lib.sh run on a /proc/mounts of `lines` (each path spelt as the kernel spells it:
   * \134, \040, \012), for `runDir` and /run/netns/cni-: the paths it prints, NUL-separated.
   */
  const mountsUnder = (runDir: string, lines: (spelt: (path: string) => string) => string[], file: string): string[] => {
    const lib = readFileSync(join(root, "scripts", "cluster", "lib.sh"), "utf8");
    const fn = /^mounts_under\(\) \{\n[\s\S]*?\n\}\n/m.exec(lib)?.[0] ?? "";
    expect(fn).toContain("mounts_under()");
    const spelt = (path: string) => path.replace(/\\/g, "\\134").replace(/ /g, "\\040").replace(/\n/g, "\\012");
    const mounts = join(scratch, file);
    writeFileSync(mounts, [...lines(spelt), "proc /proc proc rw 0 0", "nsfs /run/netns/cni-1234 nsfs rw 0 0", ""].join("\n"));
    const run = spawnSync("bash", ["-c", `set -euo pipefail\n${fn}\nmounts_under "$1" /run/netns/cni-`, "mounts", runDir], { env: { ...process.env, PROC_MOUNTS: mounts }, encoding: "utf8" });
    expect(run.stderr).toBe("");
    return run.stdout.split("\0").filter(Boolean);
  };

  it("scripts/lib/locks.sh names the holders of a lock under a cache path holding '*', '?', '[', ' ' and 'é', and only them", async () => {
    const plain = join(scratch, "cache a", "locks", "x.lock");
    const bracketed = join(scratch, "cache [é]", "locks", "x.lock");
    for (const file of [plain, bracketed]) mkdirSync(join(file, ".."), { recursive: true });
    const [plainPid, bracketedPid] = [await hold(plain), await hold(bracketed)];
    const pidsOf = (file: string): string => {
      const run = spawnSync("bash", ["-c", 'source scripts/lib/locks.sh && _lock_holder_pids "$1"', "pids", file], { cwd: root, env: { ...process.env, TRADING_CACHE_DIR: scratch }, encoding: "utf8" });
      expect(run.stderr).toBe("");
      return run.stdout.trim();
    };
    // As find -lname patterns, "cache ?" and "cache *" matched "cache a" (and "cache [é]" the latter), "cache [é]" matched "cache é" alone.
    expect(pidsOf(join(scratch, "cache ?", "locks", "x.lock"))).toBe("");
    expect(pidsOf(join(scratch, "cache *", "locks", "x.lock"))).toBe("");
    expect(pidsOf(bracketed)).toBe(String(bracketedPid));
    expect(pidsOf(plain)).toBe(String(plainPid));
  });

  it("scripts/cluster/lib.sh mounts_under finds the mounts under a run folder holding ' ', '[', '.' as /proc/mounts spells them, and only those", () => {
    const runDir = join(scratch, "ca.che [1]", "k8s", "run");
    mkdirSync(runDir, { recursive: true });
    const found = mountsUnder(
      runDir,
      (spelt) => [
        `tmpfs ${spelt(`${runDir}/pods/a b\\c`)} tmpfs rw 0 0`,
        // What the old regular expression matched instead: '.' any character, [1] the character 1.
        `tmpfs ${spelt(`${join(scratch, "caXche 1", "k8s", "run")}/x`)} tmpfs rw 0 0`,
      ],
      "mounts",
    );
    expect(found).toEqual([`${runDir}/pods/a b\\c`, "/run/netns/cni-1234"]);
  });

  it("scripts/cluster/lib.sh mounts_under keeps a newline of a path (/proc/mounts' \\012) inside it, in the mounts it prints and in a run folder it is given", () => {
    // A run folder "<scratch>/a<nl>/<nl>run<nl>": given to awk one a line, it was the prefixes "<scratch>/a",
    // "/" (every mount of the host) and "run"; $(readlink -f) dropped its last newline.
    const runDir = join(scratch, "a\n", "\nrun\n");
    mkdirSync(runDir, { recursive: true });
    const found = mountsUnder(
      runDir,
      (spelt) => [`tmpfs ${spelt(`${runDir}/pods/x\n/y`)} tmpfs rw 0 0`, `tmpfs ${spelt(join(scratch, "a"))} tmpfs rw 0 0`, `tmpfs ${spelt(runDir.slice(0, -1))}x tmpfs rw 0 0`],
      "mounts-nl",
    );
    // One path each, as umount takes it: before, "<run>/pods/x" and "/y" were two lines, and every mount matched.
    expect(found).toEqual([`${runDir}/pods/x\n/y`, "/run/netns/cni-1234"]);
  });
});
