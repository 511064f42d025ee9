/**
 * Relations between two numeric variables of one schema: a batch size and its cap, a default and the
 * most a client may ask, a renewal interval and the lease it renews, a wait and the timeout it runs
 * inside. Each variable is in range alone (its schema's minimum and maximum), yet in the wrong order
 * one setting is silently void or the service misbehaves (session 51: CH_BATCH_BYTES above
 * CH_MAX_BATCH_BYTES made every fetch wait out CH_FLUSH_MS). The schema says it on the smaller one:
 *
 *   CH_BATCH_BYTES: Type.Integer({ ..., atMost: { key: "CH_MAX_BATCH_BYTES", why: "..." } }),
 *   KAFKA_HEARTBEAT_MS: Type.Integer({ ..., atMost: { key: "KAFKA_SESSION_TIMEOUT_MS", divisor: 3, why: "..." } }),
 *
 * and loadConfig (./config.ts) refuses the pair at start, naming both in its ConfigError:
 * `CH_BATCH_BYTES (8388608) must be <= CH_MAX_BATCH_BYTES (4194304): ...`.
 */
import type { TSchema } from "@sinclair/typebox";

/** The other variable this one may not exceed (divided by `divisor`), and why, in words. */
export interface EnvRelation {
  key: string;
  divisor?: number;
  why: string;
}

type Schemas = Record<string, TSchema>;

/**
 * Every declared relation broken in `value`; a variable already refused (`refused`) or unset is not
 * judged again, and one not `printed` (a secret) is named without its value.
 */
export function relationProblems(schema: Schemas, value: Record<string, unknown>, refused: ReadonlySet<string>, printed: (name: string) => boolean): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(schema)) {
    const rel = (s as { atMost?: EnvRelation }).atMost;
    if (!rel) continue;
    // A relation to a variable of another schema would never be judged: a mistake of the schema, said at once.
    if (!(rel.key in schema)) throw new Error(`${name}'s atMost names ${rel.key}, which is not a variable of the same schema`);
    const [mine, theirs] = [value[name], value[rel.key]];
    if (refused.has(name) || refused.has(rel.key) || typeof mine !== "number" || typeof theirs !== "number") continue;
    const bound = theirs / (rel.divisor ?? 1);
    if (mine <= bound) continue;
    const [shownMine, shownTheirs] = [printed(name) ? ` (${mine})` : "", printed(rel.key) ? ` (${rel.divisor ? `${theirs} / ${rel.divisor} = ${Math.floor(bound)}` : theirs})` : ""];
    problems.push(`${name}${shownMine} must be <= ${rel.key}${rel.divisor ? ` / ${rel.divisor}` : ""}${shownTheirs}: ${rel.why}`);
  }
  return problems;
}
