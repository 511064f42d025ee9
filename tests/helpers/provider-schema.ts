/**
 * This repo's own provider plugins (tools/providers/{docker,random}) implement only part of the
 * upstream packages and reject in Check every input their schema does not declare. The unit tests'
 * Pulumi mocks accept anything, so a property the program sets but the plugin lacks passes them
 * and fails only at a real `pulumi up`. These helpers read the schema each plugin's build checks
 * against its binary (tools/providers/<name>/schema.json) and check recorded inputs against it.
 */
import * as fs from "fs";
import * as path from "path";

interface PropertySpec {
  type?: string;
  $ref?: string;
  items?: PropertySpec;
  additionalProperties?: PropertySpec;
}

interface ObjectSpec {
  properties?: Record<string, PropertySpec>;
  required?: string[];
}

export interface ProviderSchema {
  name: string;
  resources: Record<string, { inputProperties?: Record<string, PropertySpec>; requiredInputs?: string[] }>;
  types: Record<string, ObjectSpec>;
}

const root = path.join(__dirname, "..", "..");

/** The committed schema of this repo's plugin pulumi-resource-<name>. */
export function providerSchema(name: "docker" | "random"): ProviderSchema {
  return JSON.parse(fs.readFileSync(path.join(root, "tools", "providers", name, "schema.json"), "utf8"));
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  return typeof value;
}

function valueProblems(schema: ProviderSchema, spec: PropertySpec, value: unknown, at: string): string[] {
  if (value === undefined || value === null) return [];
  if (spec.$ref) {
    const token = spec.$ref.replace(/^#\/types\//, "");
    const type = schema.types[token];
    if (!type) return [`${at}: type ${token} is not declared`];
    return objectProblems(schema, type.properties ?? {}, type.required ?? [], value, at);
  }
  const kind = kindOf(value);
  switch (spec.type) {
    case "string":
      return kind === "string" ? [] : [`${at}: a string is expected, not ${kind}`];
    case "boolean":
      return kind === "boolean" ? [] : [`${at}: a boolean is expected, not ${kind}`];
    case "number":
      return kind === "number" ? [] : [`${at}: a number is expected, not ${kind}`];
    case "integer":
      return Number.isInteger(value) ? [] : [`${at}: an integer is expected, not ${JSON.stringify(value)}`];
    case "array":
      if (kind !== "array") return [`${at}: a list is expected, not ${kind}`];
      return (value as unknown[]).flatMap((v, i) => valueProblems(schema, spec.items ?? {}, v, `${at}[${i}]`));
    case "object":
      if (kind !== "object") return [`${at}: a map is expected, not ${kind}`];
      return Object.entries(value as object).flatMap(([k, v]) => valueProblems(schema, spec.additionalProperties ?? {}, v, `${at}.${k}`));
    default:
      return [];
  }
}

function objectProblems(schema: ProviderSchema, properties: Record<string, PropertySpec>, required: string[], value: unknown, at: string): string[] {
  const where = (k: string) => (at ? `${at}.${k}` : k);
  if (kindOf(value) !== "object") return [`${at}: an object is expected, not ${kindOf(value)}`];
  const object = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const [k, v] of Object.entries(object)) {
    const spec = properties[k];
    if (!spec) {
      if (v !== undefined && v !== null) problems.push(`${where(k)}: not supported by this repo's pulumi-resource-${schema.name}`);
      continue;
    }
    problems.push(...valueProblems(schema, spec, v, where(k)));
  }
  for (const k of required) {
    if (object[k] === undefined || object[k] === null) problems.push(`${where(k)}: required by this repo's pulumi-resource-${schema.name}`);
  }
  return problems;
}

/**
 * What the plugin's Check would refuse in these inputs of resource `type`, each naming the
 * property path; a type the plugin does not implement is one problem.
 */
export function inputProblems(schema: ProviderSchema, type: string, inputs: Record<string, unknown>): string[] {
  const resource = schema.resources[type];
  if (!resource) return [`${type} is not a resource of this repo's pulumi-resource-${schema.name}`];
  return objectProblems(schema, resource.inputProperties ?? {}, resource.requiredInputs ?? [], inputs, "");
}
