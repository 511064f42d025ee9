/**
 * Reads the stack's configuration through Pulumi and hands it to the pure parser.
 * Kept separate from `config.ts` so the parser has no dependency on the engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { checkConfigKeys, checkPlainConfigValues, checkSecretConfig, checkSecretValues, CONFIG_NAMESPACE, configKeys, parseStackConfig, RawConfig, secretConfigKeys, SecretConfigKey, StackConfig } from "./config";

export * from "./config";

export interface LoadedConfig {
  config: StackConfig;
  /** Credentials set with `pulumi config set --secret`; absent keys are undefined. */
  secrets: Partial<Record<SecretConfigKey, pulumi.Output<string>>>;
}

/**
 * Whether a config key was set with `--secret`: @pulumi/pulumi's runtime exports `isConfigSecret`
 * (from the secret keys the language host passes) but leaves it out of its type declarations.
 */
function isConfigSecret(key: string): boolean {
  const check: unknown = Reflect.get(pulumi.runtime, "isConfigSecret");
  if (typeof check !== "function") throw new Error("@pulumi/pulumi no longer exports runtime.isConfigSecret: stacks/index.ts cannot tell secret config from plain");
  return check(key) === true;
}

export function loadStackConfig(): LoadedConfig {
  const cfg = new pulumi.Config(CONFIG_NAMESPACE);
  const stack = pulumi.getStack();
  const allConfig = pulumi.runtime.allConfig();
  const setKeys = Object.keys(allConfig);
  const encryptedKeys = setKeys.filter(isConfigSecret);
  checkConfigKeys(stack, setKeys, encryptedKeys);
  // A credential in a plain value of any namespace (a kubeconfig's token, a token pasted into a setting): never shown.
  checkPlainConfigValues(stack, allConfig, encryptedKeys);
  // Only whether each credential is blank is judged; the values stay in this function.
  checkSecretValues(stack, Object.fromEntries(secretConfigKeys.map((key) => [key, allConfig[`${CONFIG_NAMESPACE}:${key}`]])));
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
