/**
 * Entry point of the Pulumi program: read the stack's typed configuration, compose the platform,
 * export what users need. Everything else lives in components/ and stacks/.
 */
import * as pulumi from "@pulumi/pulumi";
import { TradingPlatform } from "./components/platform";
import { ConfigError, loadStackConfig } from "./stacks";

function load() {
  try {
    return loadStackConfig();
  } catch (err) {
    // A configuration mistake is the user's to fix: print the message, not a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

const platform = new TradingPlatform("trading", load());

/** Secret: `pulumi stack output connectionStrings --show-secrets`. */
export const connectionStrings = pulumi.secret(platform.outputs.connectionStrings);
export const gatewayUrl = platform.outputs.gatewayUrl;
export const grafanaUrl = platform.outputs.grafanaUrl ?? null;
export const prometheusUrl = platform.outputs.prometheusUrl ?? null;
export const services = platform.outputs.services;
export const grafanaAdminPassword = platform.outputs.grafanaAdminPassword ?? null;
