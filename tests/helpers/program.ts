/**
 * Runs the real Pulumi program (index.ts) under `pulumi.runtime.setMocks`, with the stack's own
 * Pulumi.<stack>.yaml plus overrides, and records every resource's inputs. Mocks answer only the
 * resource types the program is meant to create and fail loudly on anything else.
 */
import * as fs from "fs";
import * as path from "path";

export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  inputs: Record<string, any>;
  /** Input paths (dotted) that arrived as secrets. */
  secretPaths: string[];
}

/** Pulumi's wire marker of a secret value inside serialized inputs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270";

function unwrapSecrets(value: any, at: string, paths: string[]): any {
  if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${at}[${i}]`, paths));
  if (value && typeof value === "object") {
    if (value[SECRET_SIG] === SECRET_MARK) {
      paths.push(at);
      return unwrapSecrets(value.value, at, paths);
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v, at ? `${at}.${k}` : k, paths)]));
  }
  return value;
}

export interface ProgramRun {
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
  /** Export names whose values are secret outputs. */
  secretOutputs: string[];
}

const root = path.join(__dirname, "..", "..");

/** Reads `config:` of Pulumi.<stack>.yaml; values are scalars, one per line. */
export function stackFileConfig(stack: string): Record<string, string> {
  const text = fs.readFileSync(path.join(root, `Pulumi.${stack}.yaml`), "utf8");
  const config: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s+([a-z]+:[A-Za-z]+):\s*(.+?)\s*$/.exec(line);
    if (!m) continue;
    config[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return config;
}

/** Deterministic fake values for the outputs providers compute. */
function computedState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
  switch (type) {
    case "random:index/randomPassword:RandomPassword":
      return { ...inputs, result: `Mock${name.replace(/[^A-Za-z0-9]/g, "")}`.padEnd(inputs.length ?? 44, "x").slice(0, inputs.length ?? 44) };
    case "random:index/randomBytes:RandomBytes":
      return { ...inputs, hex: "ab".repeat(inputs.length), base64: Buffer.alloc(inputs.length, 0xab).toString("base64") };
    case "docker:index/image:Image":
      return { ...inputs, repoDigest: `${String(inputs.imageName).split(":")[0]}@sha256:${"0".repeat(64)}` };
    case "docker:index/remoteImage:RemoteImage":
      return { ...inputs, imageId: `sha256:${"1".repeat(64)}`, repoDigest: `${inputs.name}@sha256:${"1".repeat(64)}` };
    default:
      return inputs;
  }
}

const knownTypes = new Set([
  "random:index/randomPassword:RandomPassword",
  "random:index/randomBytes:RandomBytes",
  "docker:index/network:Network",
  "docker:index/volume:Volume",
  "docker:index/container:Container",
  "docker:index/image:Image",
  "docker:index/remoteImage:RemoteImage",
  "pulumi:providers:kubernetes",
  "kubernetes:core/v1:Namespace",
  "kubernetes:core/v1:Secret",
  "kubernetes:core/v1:ConfigMap",
  "kubernetes:core/v1:Service",
  "kubernetes:core/v1:PersistentVolumeClaim",
  "kubernetes:apps/v1:StatefulSet",
  "kubernetes:apps/v1:Deployment",
  "kubernetes:batch/v1:Job",
  "kubernetes:batch/v1:CronJob",
  "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  "kubernetes:networking.k8s.io/v1:Ingress",
  "kubernetes:traefik.io/v1alpha1:Middleware",
  "kubernetes:policy/v1:PodDisruptionBudget",
  "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
]);

export class UnmockedError extends Error {}

/**
 * Runs the program for `stack` with `config` overriding the stack file (keys with or without the
 * `trading:` prefix; `null` removes a key). Throws what the program throws.
 */
export async function runProgram(stack: "dev" | "prod" | string, config: Record<string, string | null> = {}, secretConfig: Record<string, string> = {}): Promise<ProgramRun> {
  // Pulumi formats a stack trace for every promise it makes (runtime/debuggable.js) and every
  // resource (resource.js), and vitest's source-mapped formatting of those cost 55-65 % of a prod
  // run's CPU (4.9-6.2 s a run against 2.2 s with V8's own, measured in session 44). The run uses
  // V8's: a message is unchanged, only the stack lines of an error thrown inside the program point
  // at the transpiled code. Restored after the run, so the test's own failures stay source-mapped.
  const prepareStackTrace = Error.prepareStackTrace;
  Reflect.deleteProperty(Error, "prepareStackTrace");
  try {
    return await runProgramOnce(stack, config, secretConfig);
  } finally {
    if (prepareStackTrace) Error.prepareStackTrace = prepareStackTrace;
  }
}

async function runProgramOnce(stack: string, config: Record<string, string | null>, secretConfig: Record<string, string>): Promise<ProgramRun> {
  // Under vitest each run gets fresh modules (a fresh Pulumi runtime); elsewhere (the benchmark)
  // the caller runs one program per process.
  if (process.env.VITEST) {
    const { vi } = await import("vitest");
    vi.resetModules();
  }
  const pulumi = await import("@pulumi/pulumi");
  const resources: RecordedResource[] = [];
  const errors: Error[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        if (!knownTypes.has(args.type) && !args.type.startsWith("trading:")) {
          const err = new UnmockedError(`unmocked resource type ${args.type} (${args.name})`);
          errors.push(err);
          throw err;
        }
        const secretPaths: string[] = [];
        const inputs = unwrapSecrets(args.inputs, "", secretPaths);
        resources.push({ type: args.type, name: args.name, urn: `urn:pulumi:${stack}::trading::${args.type}::${args.name}`, inputs, secretPaths });
        return { id: `${args.name}-id`, state: computedState(args.type, args.name, inputs) };
      },
      call(args) {
        const err = new UnmockedError(`unmocked call ${args.token}`);
        errors.push(err);
        throw err;
      },
    },
    "trading",
    stack,
    false,
  );
  const merged: Record<string, string> = { ...(fs.existsSync(path.join(root, `Pulumi.${stack}.yaml`)) ? stackFileConfig(stack) : {}) };
  for (const [k, v] of Object.entries({ ...config, ...secretConfig })) {
    const key = k.includes(":") ? k : `trading:${k}`;
    if (v === null) delete merged[key];
    else merged[key] = v;
  }
  pulumi.runtime.setAllConfig(
    merged,
    Object.keys(secretConfig).map((k) => (k.includes(":") ? k : `trading:${k}`)),
  );
  const program = await import("../../index");
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [key, value] of Object.entries(program)) {
    if (pulumi.Output.isInstance(value)) {
      const { value: v, isSecret } = await unwrap(pulumi, value);
      outputs[key] = v;
      if (isSecret) secretOutputs.push(key);
    } else {
      outputs[key] = value;
    }
  }
  // Registrations that no export depends on finish too: the runtime's queue of calls in flight
  // drained (disconnect waits for it), so an unmocked one registered late is among the errors.
  await pulumi.runtime.disconnect();
  if (errors.length > 0) throw errors[0];
  return { resources, outputs, secretOutputs };
}

async function unwrap(pulumi: typeof import("@pulumi/pulumi"), output: any): Promise<{ value: unknown; isSecret: boolean }> {
  const isSecret = await output.isSecret;
  const value = await new Promise((resolve) => output.apply((v: unknown) => resolve(v)));
  return { value, isSecret };
}

export function byType(run: ProgramRun, type: string): RecordedResource[] {
  return run.resources.filter((r) => r.type === type);
}

export function named(run: ProgramRun, type: string, name: string): RecordedResource {
  const found = run.resources.find((r) => r.type === type && r.name === name);
  if (!found) throw new Error(`no ${type} named ${name}; have: ${byType(run, type).map((r) => r.name).join(", ")}`);
  return found;
}
