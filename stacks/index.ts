/**
 * Reads the stack's configuration through Pulumi and hands it to the pure parser.
 * Kept separate from `config.ts` so the parser has no dependency on the engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_NAMESPACE, ConfigError, configKeys, parseStackConfig, RawConfig, secretConfigKeys, SecretConfigKey, StackConfig } from "./config";

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
  if (config.trading.mode === "live") {
    for (const key of ["binanceApiKey", "binanceSecretKey"] as const) {
      if (secrets[key] === undefined) {
        throw new ConfigError(key, stack, `is required when tradingMode is live (pulumi config set --secret ${CONFIG_NAMESPACE}:${key} ...)`);
      }
    }
  }
  // The card processor's key and its webhook signing secret only work as a pair.
  if ((secrets.paymentProcessorApiKey === undefined) !== (secrets.paymentWebhookSecret === undefined)) {
    const missing = secrets.paymentProcessorApiKey === undefined ? "paymentProcessorApiKey" : "paymentWebhookSecret";
    throw new ConfigError(missing, stack, `is required together with the other payment secret (pulumi config set --secret ${CONFIG_NAMESPACE}:${missing} ...)`);
  }
  return { config, secrets };
}
