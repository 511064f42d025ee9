/**
 * Configuration from environment variables, validated once at start.
 *
 * A service declares a schema (`{ VAR_NAME: env.int({ default: 5 }) , ... }`); `loadConfig` parses
 * every variable, collects all problems and throws a `ConfigError` whose message names each variable,
 * e.g. `Invalid configuration: POSTGRES_URL is required by user-management`.
 * Secrets (`secret: true`) are never printed: `describeConfig` masks them.
 */

export interface VarOptions<T> {
  /** Value when the variable is unset or empty. A variable with a default is never missing. */
  default?: T;
  /** Unset is allowed (value `undefined`). Without `optional` or `default` the variable is required. */
  optional?: boolean;
  /** Masked when printed. */
  secret?: boolean;
  description?: string;
}

export interface VarSpec<T> {
  readonly kind: string;
  readonly options: VarOptions<T>;
  /** Parses a non-empty raw value or returns an error message ("must be ..."). */
  parse(raw: string): { ok: true; value: T } | { ok: false; error: string };
}

/** The value type of a spec: `T` when required or defaulted, `T | undefined` when optional. */
export type VarValue<S> = S extends VarSpec<infer T>
  ? S extends { options: { default: unknown } }
    ? T
    : S extends { options: { optional: true } }
      ? T | undefined
      : T
  : never;

export type ConfigSchema = Record<string, VarSpec<any>>;
export type ConfigOf<S extends ConfigSchema> = { readonly [K in keyof S]: VarValue<S[K]> };

type Spec<T, O> = VarSpec<T> & { options: O };

function spec<T, O extends VarOptions<T>>(kind: string, options: O, parse: VarSpec<T>["parse"]): Spec<T, O> {
  return { kind, options, parse };
}

const ok = <T>(value: T) => ({ ok: true as const, value });
const fail = (error: string) => ({ ok: false as const, error });

export interface StringOptions extends VarOptions<string> {
  minLength?: number;
  maxLength?: number;
  pattern?: RegExp;
}
export interface NumberOptions extends VarOptions<number> {
  min?: number;
  max?: number;
}
export interface UrlOptions extends VarOptions<string> {
  /** Allowed protocols without the colon, e.g. ["postgres", "postgresql"]. */
  protocols?: string[];
}

/** Builders of variable specs. */
export const env = {
  string<O extends StringOptions>(options: O = {} as O) {
    return spec<string, O>("string", options, (raw) => {
      if (options.minLength !== undefined && raw.length < options.minLength)
        return fail(`must be at least ${options.minLength} characters long`);
      if (options.maxLength !== undefined && raw.length > options.maxLength)
        return fail(`must be at most ${options.maxLength} characters long`);
      if (options.pattern && !options.pattern.test(raw)) return fail(`must match ${options.pattern}`);
      return ok(raw);
    });
  },
  int<O extends NumberOptions>(options: O = {} as O) {
    return spec<number, O>("int", options, (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) return fail("must be an integer");
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) return fail("must be a safe integer");
      if (options.min !== undefined && n < options.min) return fail(`must be >= ${options.min}`);
      if (options.max !== undefined && n > options.max) return fail(`must be <= ${options.max}`);
      return ok(n);
    });
  },
  number<O extends NumberOptions>(options: O = {} as O) {
    return spec<number, O>("number", options, (raw) => {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n)) return fail("must be a number");
      if (options.min !== undefined && n < options.min) return fail(`must be >= ${options.min}`);
      if (options.max !== undefined && n > options.max) return fail(`must be <= ${options.max}`);
      return ok(n);
    });
  },
  bool<O extends VarOptions<boolean>>(options: O = {} as O) {
    return spec<boolean, O>("bool", options, (raw) => {
      const v = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(v)) return ok(true);
      if (["0", "false", "no", "off"].includes(v)) return ok(false);
      return fail("must be true or false");
    });
  },
  url<O extends UrlOptions>(options: O = {} as O) {
    return spec<string, O>("url", options, (raw) => {
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        return fail("must be a URL");
      }
      const proto = u.protocol.replace(/:$/, "");
      if (options.protocols && !options.protocols.includes(proto))
        return fail(`must be a URL with protocol ${options.protocols.join(" or ")}`);
      return ok(raw);
    });
  },
  enum<const V extends readonly string[], O extends VarOptions<V[number]>>(values: V, options: O = {} as O) {
    return spec<V[number], O>("enum", options, (raw) =>
      values.includes(raw) ? ok(raw as V[number]) : fail(`must be one of ${values.join(", ")}`),
    );
  },
  /** Comma-separated list of non-empty items, optionally each matching `itemPattern`. */
  list<O extends VarOptions<string[]> & { itemPattern?: RegExp; itemDescription?: string }>(options: O = {} as O) {
    return spec<string[], O>("list", options, (raw) => {
      const items = raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      if (items.length === 0) return fail("must list at least one item");
      if (options.itemPattern) {
        const bad = items.find((i) => !options.itemPattern!.test(i));
        if (bad !== undefined) return fail(`has an invalid item "${bad}" (expected ${options.itemDescription ?? options.itemPattern})`);
      }
      return ok(items);
    });
  },
};

export class ConfigError extends Error {
  constructor(
    readonly service: string,
    readonly problems: string[],
  ) {
    super(`Invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
  }
}

/**
 * Parses `source` (default `process.env`) against `schema`. Throws a ConfigError listing every
 * problem, each naming its variable and the service that requires it.
 */
export function loadConfig<S extends ConfigSchema>(
  service: string,
  schema: S,
  source: NodeJS.ProcessEnv = process.env,
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, s] of Object.entries(schema)) {
    const raw = source[name];
    if (raw === undefined || raw.trim() === "") {
      if (s.options.default !== undefined) out[name] = s.options.default;
      else if (s.options.optional) out[name] = undefined;
      else problems.push(`${name} is required by ${service}`);
      continue;
    }
    const r = s.parse(raw);
    if (r.ok) out[name] = r.value;
    // Never echo the raw value of a secret.
    else problems.push(`${name} ${r.error}${s.options.secret ? "" : ` (got "${raw.length > 80 ? raw.slice(0, 80) + "..." : raw}")`}`);
  }
  if (problems.length > 0) throw new ConfigError(service, problems);
  return out as ConfigOf<S>;
}

/** A printable copy of a config: secrets become "***", passwords inside URLs are masked. */
export function describeConfig(config: Record<string, unknown>, schema: ConfigSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(config)) {
    const s = schema[name];
    if (value === undefined) continue;
    if (s?.options.secret) out[name] = "***";
    else if (typeof value === "string" && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) out[name] = maskUrl(value);
    else out[name] = value;
  }
  return out;
}

export function maskUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return raw;
  }
}
