/**
 * The known name closest to a misspelt one, for the refusals' "did you mean": config keys and namespaces
 * (stacks/config.ts checkConfigKeys), and the names inside a value (a service of disabledServices,
 * serviceReplicas or serviceSettings, a variable of serviceSettings), where a typo was refused with no hint.
 */
import { distance } from "fastest-levenshtein";

/** The known name closest to `typed` (case ignored), if it is a plausible typo: at most a third of it edited. */
export function nearestName(typed: string, known: readonly string[]): string | undefined {
  const lower = typed.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const d = distance(lower, candidate.toLowerCase());
    if (best === undefined || d < best.distance) best = { name: candidate, distance: d };
  }
  return best !== undefined && best.distance <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

/** ": did you mean 'x'?" for a plausible typo of a known name, else "". */
export function didYouMean(typed: string, known: readonly string[]): string {
  const nearest = typed.length <= 200 ? nearestName(typed, known) : undefined;
  return nearest !== undefined ? `: did you mean '${nearest}'?` : "";
}
