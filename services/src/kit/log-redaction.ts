/**
 * The fields of a log line with every credential censored, at any depth: a field whose name says
 * credential (./credential-words.ts isCredentialField: `password`, `authorization`, `x-api-key`,
 * `newPassword`, `refresh_token`, ...) is written as "[REDACTED]" wherever it sits, in nested
 * objects and in arrays of them (`{ user: { profile: { password } } }`, `[{ token }]`).
 *
 * pino's own redaction (fast-redact's paths, @pinojs/redact in pino 9) has no recursive wildcard:
 * `*.password` is one level, and paths repeated to a depth cost far more per line than this walk
 * (bench/log-redaction.ts, CPU µs per line on 2026-12-05: a 4-field line 4.0 without masking, 5.2
 * with this walk, 14.3 with session 41's one-level paths, 149 with the same names to depth 6,
 * 64 paths; a nested line 5.9, 9.2, 19.1 and 217). The walk copies only the
 * branches it changes, so a line with nothing to censor is written from the caller's own objects,
 * which are never changed.
 *
 * A child logger's own bindings (`log.child({ upstream: { headers: { authorization } } })`) are
 * walked too, once, when the child is made (censorChildBindings): pino runs the bindings formatter
 * on the root's `base` only and resets it for every child, so they were written in clear on each
 * of the child's lines. The lines themselves pay nothing more.
 */
import { isCredentialField } from "./credential-words";

export const CENSOR = "[REDACTED]";
/** Deeper than this, a value is written as "[Object]" (never printed unchecked). */
const MAX_DEPTH = 32;

/**
 * Whether a value is walked: every object JSON writes as its own fields (plain objects, arrays,
 * errors, class instances such as a request or a client's config); not one with its own `toJSON`
 * (a date, a buffer), which is written as that says.
 */
function walked(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON !== "function";
}

function walk(value: unknown, depth: number, ancestors: object[]): unknown {
  if (typeof value !== "object" || value === null || !walked(value)) return value;
  if (ancestors.includes(value)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Object]";
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const v = walk(value[i], depth + 1, ancestors);
        if (v !== value[i]) (copy ??= value.slice())[i] = v;
      }
      return copy ?? value;
    }
    return walkFields(value as Record<string, unknown>, depth, ancestors, undefined);
  } finally {
    ancestors.pop();
  }
}

function walkFields(fields: Record<string, unknown>, depth: number, ancestors: object[], skip: string | undefined): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const k of Object.keys(fields)) {
    if (k === skip) continue;
    const v = fields[k];
    if (v === undefined || v === null) continue;
    const out = isCredentialField(k) ? CENSOR : walk(v, depth + 1, ancestors);
    if (out !== v) (copy ??= { ...fields })[k] = out;
  }
  return copy ?? fields;
}

/** `fields` with every credential-named field censored at any depth: `fields` itself when there is none. */
export function redactFields<T extends object>(fields: T): T {
  return walkFields(fields as Record<string, unknown>, 0, [fields], undefined) as T;
}

/**
 * The merging object of a log line (pino's `formatters.log`): as redactFields, but its `err` is left
 * to the `err` serializer (kit/app.ts scrubbedError), which censors the same names and masks
 * credential-shaped text in the error's strings, after pino has made the error a plain object.
 */
export function redactLogFields(fields: Record<string, unknown>): Record<string, unknown> {
  return walkFields(fields, 0, [fields], "err");
}

/** What censorChildBindings needs of a pino logger (and of every child, which inherits from it). */
interface Bindable {
  child(bindings: object, options?: object): unknown;
  setBindings(bindings: object): void;
}

const censorBindings = (bindings: unknown): unknown =>
  typeof bindings === "object" && bindings !== null ? redactFields(bindings) : bindings;

/**
 * `logger`, whose children (and their children: a pino child is made with `Object.create(parent)`,
 * so it inherits these two methods) are bound to their bindings with every credential censored, as
 * a line's fields are: at any depth, in arrays and errors, by the same names. pino's own bindings
 * formatter cannot do it: pino replaces it in every child with one that passes the bindings as
 * given (pino 9 lib/proto.js `resetChildingsFormatter`) unless each caller gives its own. The walk
 * runs once per child (and per setBindings), never per line.
 */
export function censorChildBindings<L extends Bindable>(logger: L): L {
  const child = logger.child;
  const setBindings = logger.setBindings;
  Object.defineProperties(logger, {
    child: {
      value: function censoredChild(this: L, bindings: object, options?: object): unknown {
        return Reflect.apply(child, this, [censorBindings(bindings), options]);
      },
      configurable: true,
      writable: true,
    },
    setBindings: {
      value: function censoredSetBindings(this: L, bindings: object): void {
        Reflect.apply(setBindings, this, [censorBindings(bindings)]);
      },
      configurable: true,
      writable: true,
    },
  });
  return logger;
}
