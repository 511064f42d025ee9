/**
 * Reads the stack's configuration through Pulumi and hands it to the pure parser.
 * Kept separate from `config.ts` so the parser has no dependency on the engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { checkSecretConfig, CONFIG_NAMESPACE, configKeys, parseStackConfig, RawConfig, secretConfigKeys, SecretConfigKey, StackConfig } from "./config";

export * from "./config";

export interface LoadedConfig {
  config: StackConfig;
  /** Credentials set with `pulumi config set --secret`; absent keys are undefined. */
  secrets: Partial<Record<SecretConfigKey, pulumi.Output<string>>>;
}

export function loadStackConfig(): LoadedConfig {
  const cfg = new pulumi.Config(CONFIG_NAMESPACE);
  const stack = pulumi.getStack();
  const raw: RawConfig = {};
  for (const key of configKeys) {
    // Structured values (objects) come back as JSON text, which the parser validates.
    raw[key] = cfg.get(key);
  }
  const config = parseStackConfig(stack, raw);
  const secrets: LoadedConfig["secrets"] = {};
  for (const key of secretConfigKeys) {
    const value = cfg.getSecret(key);
    if (value !== undefined) secrets[key] = value;
  }
  checkSecretConfig(config, secrets);
  return { config, secrets };
}
