/** Shared by the stack configuration tests (tests/unit/config*.test.ts). */
import { expect } from "vitest";
import { ConfigError, parseStackConfig, RawConfig } from "../../stacks/config";

/** The smallest valid configuration of each target. */
export const dockerConfig: RawConfig = { target: "docker", imageSource: "local" };
export const kubernetesConfig: RawConfig = { target: "kubernetes", registry: "registry.example.com/ai", certIssuer: "letsencrypt", ingressHost: "trading.example.com" };

/** The ConfigError parseStackConfig throws for `raw` on `stack`; fails the test when it throws none or another error. */
export function configError(stack: string, raw: RawConfig): ConfigError {
  try {
    parseStackConfig(stack, raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(raw)}`);
}
