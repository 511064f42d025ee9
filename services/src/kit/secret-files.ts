/**
 * Secrets given as files. The Docker runtime writes each credential of a service to an owner-only
 * file under /run/secrets and sets `<NAME>_FILE` to its path instead of `<NAME>` (a container's
 * variables are shown by `docker inspect` to anyone with the Docker socket, and inherited by every
 * child process). Kubernetes sets `<NAME>` from its Secret (secretKeyRef), so nothing changes there.
 *
 * For a variable the schema marks secret, `<NAME>_FILE` names an absolute path whose content is the
 * value, one trailing newline trimmed. Both set, an unreadable or empty file, or `<NAME>_FILE` for a
 * variable the schema does not mark secret (the platform would believe it delivered a credential the
 * service never reads) are configuration problems naming the variable, never a content.
 */
import { readFileSync } from "node:fs";

export const SECRET_FILE_SUFFIX = "_FILE";

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== "";

/**
 * `source` with each secret variable read from its `<NAME>_FILE` (a copy; `source` is untouched),
 * and the problems found, each naming its variable. `secret` says which of `names` the schema marks secret.
 */
export function readSecretFiles(
  source: NodeJS.ProcessEnv,
  names: readonly string[],
  secret: (name: string) => boolean,
): { source: NodeJS.ProcessEnv; problems: string[] } {
  const problems: string[] = [];
  let out = source;
  for (const name of names) {
    const fileVar = `${name}${SECRET_FILE_SUFFIX}`;
    const path = source[fileVar];
    if (!set(path)) continue;
    if (!secret(name)) {
      problems.push(`${fileVar} is set, but ${name} is not a secret variable (only those are read from a file): set ${name}`);
      continue;
    }
    if (set(source[name])) {
      problems.push(`${name} and ${fileVar} are both set: set only one`);
      continue;
    }
    // Only a path is ever echoed: a value that is not one (a credential pasted in by mistake) is not.
    if (!path.startsWith("/")) {
      problems.push(`${fileVar} must be an absolute path`);
      continue;
    }
    let content: string;
    try {
      content = readFileSync(path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "error";
      problems.push(`${fileVar}: cannot read ${path} (${code})`);
      continue;
    }
    const value = content.replace(/\r?\n$/, "");
    if (value.trim() === "") {
      problems.push(`${fileVar}: ${path} is empty`);
      continue;
    }
    if (out === source) out = { ...source };
    out[name] = value;
  }
  return { source: out, problems };
}

/** Whether `name` is given, as itself or as `<NAME>_FILE` (a datastore is configured by either). */
export function givenInEnv(source: NodeJS.ProcessEnv, name: string): boolean {
  return set(source[name]) || set(source[`${name}${SECRET_FILE_SUFFIX}`]);
}
