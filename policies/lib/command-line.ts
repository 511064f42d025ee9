/**
 * Credentials given on a process's command line (pure), on both targets: a Kubernetes container's
 * `command` and `args`, a Docker container's `command`, `entrypoints` and `healthcheck.tests`. Shown
 * by `kubectl get -o yaml`, `docker inspect` and to anyone who lists processes on the host. One
 * reader for `credentials-from-secret-refs` (a literal on the command line at all, Kubernetes) and
 * `no-default-credentials` (a weak or empty one, both targets), so they agree on what a credential
 * flag is: a credential-named flag (`--db-password=x`, `--api-token x`) or a server's password
 * directive spelt as a flag (`redis-server --requirepass x`, `--masterauth x`). Multi-word entries
 * (an `sh -c` script) are read word by word.
 */
import { isCredentialName } from "./credentials";
import { isPasswordDirective } from "./file-credentials";
import { arr, str } from "./values";
import { DOCKER_CONTAINER, K8sContainer } from "./workloads";

/** One entry of a command line, and where it is (`args[1]`, `healthcheck.tests[2]`). */
export interface CommandLineEntry { text: string; at: string }

export interface CommandLineCredential {
    /** The entry holding the flag. */
    at: string;
    /** The flag as written, without its value (`--requirepass`). */
    flag: string;
    /** The literal value, quotes removed (never printed: for the weak-value check). */
    value: string;
}

/** The command-line entries of a Kubernetes container (`command`, `args`) that are known strings. */
export function k8sCommandLine(c: K8sContainer): CommandLineEntry[] {
    return entries(c.container, ["command", "args"]);
}

/** A Docker container's command lines: `command`, `entrypoints` and its health check's `tests`; [] for other resources. */
export function dockerCommandLine(type: string, props: Record<string, any>): CommandLineEntry[] {
    if (type !== DOCKER_CONTAINER) return [];
    return [...entries(props, ["entrypoints", "command"]), ...entries(props.healthcheck ?? {}, ["tests"], "healthcheck.")];
}

function entries(from: Record<string, any>, fields: string[], prefix = ""): CommandLineEntry[] {
    return fields.flatMap((field) => arr(from?.[field]).flatMap((e, i) => {
        const text = str(e);
        return text === undefined ? [] : [{ text, at: `${prefix}${field}[${i}]` }];
    }));
}

const unquote = (v: string) => v.replace(/^(["'])(.*)\1$/, "$2");

/**
 * Credential flags given a literal value: `--name=value` or `--name value` (the next word). A value
 * that is a reference (`$(VAR)`, `$VAR`, `"${VAR}"`: an env var filled from a Secret), another flag
 * or nothing is not one.
 */
export function commandLineCredentials(lines: readonly CommandLineEntry[]): CommandLineCredential[] {
    const words = lines.flatMap((l) => l.text.split(/\s+/).filter(Boolean).map((word) => ({ word, at: l.at })));
    const out: CommandLineCredential[] = [];
    words.forEach(({ word, at }, i) => {
        const flag = /^--?([A-Za-z0-9][\w.-]*)(?:=(.*))?$/.exec(word);
        if (!flag || !(isCredentialName(flag[1]) || isPasswordDirective(flag[1]))) return;
        const value = flag[2] ?? words[i + 1]?.word;
        if (value === undefined || value === "" || value.startsWith("-") || /^["']?\$/.test(value)) return;
        out.push({ at, flag: word.split("=")[0], value: unquote(value) });
    });
    return out;
}
