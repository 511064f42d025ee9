/**
 * Which validation issue to report when a value fails a union (`anyOf`, TypeBox's Type.Union). ajv
 * lists one issue per branch (the first it met in each) and then the anyOf's own; the first of
 * those is the first branch's, so `{ source: "replay" }` in a union of `synthetic` (needs `seed`)
 * and `replay` (needs `file`) was answered "data.seed must have required property 'seed'". The
 * branch the client meant is the one whose constants (a discriminator such as `source`) the value
 * matches: its issue is reported. A value matching no branch's constant is reported at that
 * property, with the values it may take.
 */
import { isJsonObject } from "./json-values";

export interface ValidationIssue {
  instancePath?: string;
  schemaPath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/** The value at a JSON pointer ("/a/0/b"), or undefined. */
function at(root: unknown, pointer: string): unknown {
  let v = root;
  for (const raw of pointer.split("/").slice(1)) {
    const token = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(v)) v = v[Number(token)];
    else if (isJsonObject(v) && Object.hasOwn(v, token)) v = v[token];
    else return undefined;
  }
  return v;
}

/** A branch's constants: the properties fixed to one value (`const`, or an enum of one). */
function constantsOf(branch: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const props = isJsonObject(branch) && isJsonObject(branch.properties) ? branch.properties : {};
  for (const [k, p] of Object.entries(props)) {
    if (!isJsonObject(p)) continue;
    if (Object.hasOwn(p, "const")) out.set(k, p.const);
    else if (Array.isArray(p.enum) && p.enum.length === 1) out.set(k, p.enum[0]);
  }
  return out;
}

/**
 * The issue to report among `issues` (ajv's, for `data` validated against `schema`); the first one
 * unless it belongs to a union whose meant branch can be told (see the file's comment).
 */
export function reportedIssue(issues: ValidationIssue[], schema: unknown, data: unknown): ValidationIssue {
  const first = issues[0];
  const union = issues.find((i) => i.keyword === "anyOf" && typeof i.schemaPath === "string" && first.schemaPath?.startsWith(`${i.schemaPath}/`));
  if (!union || !union.schemaPath?.startsWith("#")) return first;
  const branches = at(schema, union.schemaPath.slice(1));
  const value = at(data, union.instancePath ?? "");
  if (!Array.isArray(branches) || !isJsonObject(value)) return first;
  const constants = branches.map(constantsOf);
  const meant = constants.flatMap((c, i) => (c.size > 0 && [...c].every(([k, v]) => value[k] === v) ? [i] : []));
  if (meant.length === 1) {
    return issues.find((i) => i.schemaPath?.startsWith(`${union.schemaPath}/${meant[0]}/`)) ?? first;
  }
  // Matching none: the property every branch fixes (the discriminator), named with its values.
  const shared = [...(constants[0] ?? new Map()).keys()].filter((k) => constants.every((c) => c.has(k)));
  if (meant.length === 0 && shared.length === 1) {
    const key = shared[0];
    const allowed = constants.map((c) => JSON.stringify(c.get(key))).join(", ");
    return { instancePath: `${union.instancePath ?? ""}/${key}`, keyword: "discriminator", message: `must be one of ${allowed}` };
  }
  return first;
}
