/** What the kit's loadConfig says of an environment, for tests of services' variables. */
import { expect } from "vitest";
import { ConfigError, loadConfig, type ConfigSchema } from "../../services/src/kit";

/** The problems loadConfig reports for `env` (always a ConfigError), or [] when it takes it. */
export function configProblems(service: string, schema: ConfigSchema, env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(service, schema, env);
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
}
