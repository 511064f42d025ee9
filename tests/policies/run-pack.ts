/**
 * Runs the trading-hardening policy pack in-process, the way `pulumi preview --policy-pack policies
 * --policy-pack-config <file>` does, without the CLI:
 * - the config file is reconciled like the CLI does (schema defaults, then "all", then per-policy
 *   settings; properties validated against each policy's configSchema; unknown policy names rejected);
 * - every resource goes through every resource policy, with props wrapped in @pulumi/policy's own
 *   unknown-checking proxy (use UNKNOWN for a value that is not known during preview);
 * - then every stack policy runs once over all resources.
 * Violations carry the message the policy reported (the CLI prints the policy description above it).
 */
import * as fs from "fs";
import * as path from "path";
import { createRequire } from "module";
import { policies as packPolicies } from "../../policies/all";

const policiesDir = path.join(__dirname, "..", "..", "policies");
const policyRequire = createRequire(path.join(policiesDir, "package.json"));
// The engine's side (not the pack's): how @pulumi/policy's server hands properties to policies.
const { unknownCheckingProxy, UnknownValueError } = policyRequire("@pulumi/policy/proxy") as {
    unknownCheckingProxy: <T>(v: T) => T;
    UnknownValueError: new (...args: any[]) => Error;
};

/** The value the engine sends for an input not known during preview (a string computed from another resource). */
export const UNKNOWN: string = policyRequire("@pulumi/pulumi/runtime").unknownValue;

/** `args.isType(cls)` as the engine answers it: the class's type token (its isInstance check) against the resource's type. */
function isTypeOf(type: string, cls: any): boolean {
    return typeof cls?.isInstance === "function" && cls.isInstance({ __pulumiType: type }) === true;
}

export type EnforcementLevel = "advisory" | "mandatory" | "remediate" | "disabled";
export type PackConfig = Record<string, EnforcementLevel | ({ enforcementLevel?: EnforcementLevel } & Record<string, unknown>)>;

export interface TestResource {
    type: string;
    name: string;
    urn?: string;
    props: Record<string, any>;
}

export interface Violation {
    policyName: string;
    resourceName?: string;
    message: string;
    enforcementLevel: EnforcementLevel;
}

export interface Remediation {
    policyName: string;
    resourceName: string;
}

/**
 * The engine's remediate step (enforcement level "remediate"): each enabled remediation, in pack
 * order, gets the resource's properties (the engine's unknown-checking bag), and what it returns
 * replaces them. Returns the remediated resources and which policy changed which resource.
 */
export async function remediate(resources: TestResource[], config: PackConfig | "dev" | "prod" = {}, options: RunOptions = {}): Promise<{ resources: TestResource[]; remediations: Remediation[] }> {
    const cfg = reconcileConfig(typeof config === "string" ? loadConfig(config) : config, options.packEnforcementLevel);
    const remediations: Remediation[] = [];
    const out: TestResource[] = [];
    for (const r of resources) {
        let current = structuredClone(r.props);
        for (const p of packPolicies) {
            if (cfg.get(p.name)!.level !== "remediate" || !("remediateResource" in p) || !p.remediateResource) continue;
            const target = structuredClone(current);
            const props = unknownCheckingProxy(target);
            const args: any = {
                type: r.type, name: r.name, urn: urnOf(r), props, opts: opts(), stackTags: new Map(),
                isType: (cls: any) => isTypeOf(r.type, cls), asType: (cls: any) => (isTypeOf(r.type, cls) ? props : undefined),
                getConfig: () => structuredClone(cfg.get(p.name)!.props),
                notApplicable: (reason?: string): never => { throw new NotApplicable(reason); },
            };
            let result: unknown;
            try {
                result = await p.remediateResource(args);
            } catch (e) {
                if (e instanceof NotApplicable || e instanceof UnknownValueError) continue;
                throw e;
            }
            if (result === undefined || result === null) continue;
            // The engine serializes the returned bag (through the proxy to its target).
            const next = result === props ? target : structuredClone(result as Record<string, any>);
            if (JSON.stringify(next) !== JSON.stringify(current)) remediations.push({ policyName: p.name, resourceName: r.name });
            current = next;
        }
        out.push({ ...r, props: current });
    }
    return { resources: out, remediations };
}

export interface RunOptions {
    /** Run only these policies (others are treated as disabled). */
    only?: string[];
    /** The pack-level default enforcement (index.ts uses "mandatory"). */
    packEnforcementLevel?: EnforcementLevel;
}

/** Reads policies/config/<name>.json. */
export function loadConfig(name: string): PackConfig {
    return JSON.parse(fs.readFileSync(path.join(policiesDir, "config", `${name}.json`), "utf8"));
}

const LEVELS: EnforcementLevel[] = ["advisory", "mandatory", "remediate", "disabled"];

function schemaErrors(schema: any, value: unknown, where: string): string[] {
    if (!schema || typeof schema !== "object") return [];
    const errors: string[] = [];
    const t = schema.type;
    const isType = (ty: string) => {
        switch (ty) {
            case "string": return typeof value === "string";
            case "boolean": return typeof value === "boolean";
            case "number": return typeof value === "number";
            case "integer": return typeof value === "number" && Number.isInteger(value);
            case "array": return Array.isArray(value);
            case "object": return value !== null && typeof value === "object" && !Array.isArray(value);
            default: return true;
        }
    };
    if (t && !(Array.isArray(t) ? t.some(isType) : isType(t))) return [`${where}: expected ${t}, got ${JSON.stringify(value)}`];
    if (schema.enum && !schema.enum.includes(value)) errors.push(`${where}: must be one of ${schema.enum.join(", ")}`);
    if (typeof value === "number" && typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${where}: must be >= ${schema.minimum}`);
    if (Array.isArray(value) && schema.items) value.forEach((v, i) => errors.push(...schemaErrors(schema.items, v, `${where}[${i}]`)));
    if (value && typeof value === "object" && !Array.isArray(value)) {
        const props = schema.properties ?? {};
        for (const [k, v] of Object.entries(value)) {
            if (props[k]) errors.push(...schemaErrors(props[k], v, `${where}.${k}`));
            else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
                errors.push(...schemaErrors(schema.additionalProperties, v, `${where}.${k}`));
            }
        }
        for (const req of schema.required ?? []) if (!(req in value)) errors.push(`${where}: ${req} is required`);
    }
    return errors;
}

interface Resolved {
    level: EnforcementLevel;
    props: Record<string, unknown>;
}

/** The CLI's reconciliation of pack defaults and a config file (see pulumi's ReconcilePolicyPackConfig). */
export function reconcileConfig(config: PackConfig, packLevel: EnforcementLevel = "mandatory"): Map<string, Resolved> {
    const names = new Set(packPolicies.map((p) => p.name));
    const unknownNames = Object.keys(config).filter((k) => k !== "all" && !names.has(k));
    if (unknownNames.length) throw new Error(`policy config names unknown policies: ${unknownNames.join(", ")}`);
    const parse = (v: PackConfig[string] | undefined): { level?: EnforcementLevel; props: Record<string, unknown> } => {
        if (v === undefined) return { props: {} };
        if (typeof v === "string") return { level: v, props: {} };
        const { enforcementLevel, ...props } = v;
        return { level: enforcementLevel, props };
    };
    const all = parse(config.all);
    const result = new Map<string, Resolved>();
    const errors: string[] = [];
    for (const p of packPolicies) {
        const defaults: Record<string, unknown> = {};
        for (const [k, s] of Object.entries(p.configSchema?.properties ?? {})) {
            if ((s as any).default !== undefined) defaults[k] = structuredClone((s as any).default);
        }
        const own = parse(config[p.name]);
        const level = own.level ?? all.level ?? p.enforcementLevel ?? packLevel;
        if (!LEVELS.includes(level)) errors.push(`${p.name}: invalid enforcement level ${level}`);
        const props = { ...defaults, ...own.props };
        if (p.configSchema) {
            errors.push(...schemaErrors({ type: "object", properties: p.configSchema.properties, required: p.configSchema.required }, props, p.name));
        } else if (Object.keys(own.props).length) {
            errors.push(`${p.name}: takes no configuration, got ${Object.keys(own.props).join(", ")}`);
        }
        result.set(p.name, { level, props });
    }
    if (errors.length) throw new Error(`invalid policy config:\n${errors.join("\n")}`);
    return result;
}

class NotApplicable extends Error {}

function urnOf(r: TestResource): string {
    return r.urn ?? `urn:pulumi:test::trading::${r.type}::${r.name}`;
}

function opts() {
    return { protect: false, ignoreChanges: [], aliases: [], additionalSecretOutputs: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 } };
}

/** Runs the pack over `resources` with a config (an object, or a stack name for policies/config/<name>.json). */
export async function runPack(resources: TestResource[], config: PackConfig | string = {}, options: RunOptions = {}): Promise<Violation[]> {
    const cfg = reconcileConfig(typeof config === "string" ? loadConfig(config) : config, options.packEnforcementLevel);
    const violations: Violation[] = [];
    const byUrn = new Map(resources.map((r) => [urnOf(r), r.name]));
    const notApplicable = (reason?: string): never => {
        throw new NotApplicable(reason);
    };
    const active = packPolicies.filter((p) => cfg.get(p.name)!.level !== "disabled" && (!options.only || options.only.includes(p.name)));
    const levelOf = (name: string): EnforcementLevel => {
        const l = cfg.get(name)!.level;
        return l === "remediate" ? "mandatory" : l;
    };
    const handle = (e: unknown, policyName: string, resourceName?: string) => {
        if (e instanceof NotApplicable) return;
        if (e instanceof UnknownValueError) {
            violations.push({ policyName, resourceName, message: `can't run policy '${policyName}' during preview: ${(e as Error).message}`, enforcementLevel: "advisory" });
            return;
        }
        throw e;
    };

    for (const r of resources) {
        for (const p of active) {
            if (!("validateResource" in p) || !p.validateResource) continue;
            const validations = Array.isArray(p.validateResource) ? p.validateResource : [p.validateResource];
            for (const validate of validations) {
                const props = unknownCheckingProxy(structuredClone(r.props));
                const args: any = {
                    type: r.type, name: r.name, urn: urnOf(r), props, opts: opts(), stackTags: new Map(),
                    isType: (cls: any) => isTypeOf(r.type, cls), asType: (cls: any) => (isTypeOf(r.type, cls) ? props : undefined),
                    getConfig: () => structuredClone(cfg.get(p.name)!.props),
                    notApplicable,
                };
                try {
                    await validate(args, (message: any) => {
                        violations.push({ policyName: p.name, resourceName: r.name, message: String(message), enforcementLevel: levelOf(p.name) });
                    });
                } catch (e) {
                    handle(e, p.name, r.name);
                }
            }
        }
    }

    const stackResources = resources.map((r) => {
        const props = unknownCheckingProxy(structuredClone(r.props));
        return {
            type: r.type, name: r.name, urn: urnOf(r), props, opts: opts(), dependencies: [], propertyDependencies: {},
            isType: (cls: any) => isTypeOf(r.type, cls), asType: (cls: any) => (isTypeOf(r.type, cls) ? props : undefined),
        };
    });
    for (const p of active) {
        if (!("validateStack" in p)) continue;
        const args: any = { resources: stackResources, stackTags: new Map(), getConfig: () => structuredClone(cfg.get(p.name)!.props), notApplicable };
        try {
            await p.validateStack(args, (message: any, urn?: string) => {
                violations.push({
                    policyName: p.name,
                    resourceName: urn ? byUrn.get(urn) ?? urn : undefined,
                    message: String(message),
                    enforcementLevel: levelOf(p.name),
                });
            });
        } catch (e) {
            handle(e, p.name);
        }
    }
    return violations;
}

export function mandatory(violations: Violation[]): Violation[] {
    return violations.filter((v) => v.enforcementLevel === "mandatory");
}

/** Sorted distinct policy names of the violations. */
export function policyNames(violations: Violation[]): string[] {
    return [...new Set(violations.map((v) => v.policyName))].sort();
}

/** "<policy> <resource>" lines, sorted: a compact shape to assert on. */
export function summary(violations: Violation[]): string[] {
    return violations.map((v) => `${v.policyName} ${v.resourceName ?? "<stack>"}`).sort();
}
