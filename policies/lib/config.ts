/** Policy configuration helpers shared by the rules. */

export type Environment = "dev" | "prod";

/** Config schema fragment for the `environment` property of stack-sensitive policies. */
export const environmentSchema = {
    type: "string" as const,
    enum: ["dev", "prod"],
    default: "prod",
    description: "Which stack the pack checks. Prod-only rules are not applicable when this is \"dev\". " +
        "Defaults to \"prod\" so a missing config file fails safe (strict).",
};

/**
 * The policy's config merged over the given defaults. The CLI fills schema defaults itself, but a
 * pack may be run without a config file, so rules never rely on that.
 */
export function readConfig<T extends object>(args: { getConfig<C extends object>(): C }, defaults: T): T {
    const given = (args.getConfig<Partial<T>>() ?? {}) as Partial<T>;
    const merged: any = { ...defaults };
    for (const [k, v] of Object.entries(given)) {
        if (v !== undefined && v !== null) merged[k] = v;
    }
    return merged as T;
}
