/**
 * Every credential of the platform, generated once per stack and kept (encrypted) in Pulumi state.
 * Strength follows the guide's hardening section: `openssl rand -base64 32` (256 bits) for
 * passwords and `openssl rand -hex 64` (64 bytes) for the JWT key. Passwords use letters and digits
 * only (44 of them carry 262 bits) so they are safe inside connection URLs without escaping.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/** 44 alphanumeric characters: log2(62) * 44 = 262 bits, at least `openssl rand -base64 32`. */
export const PASSWORD_LENGTH = 44;
/** Bytes of the JWT signing key, as `openssl rand -hex 64`. */
export const JWT_KEY_BYTES = 64;

export interface PlatformSecretsArgs {
  /** Names of the credentials to generate, e.g. "postgres", "grafana-admin". */
  passwords: string[];
}

export class PlatformSecrets extends pulumi.ComponentResource {
  /** Generated passwords by name; each a secret output. */
  readonly passwords: Record<string, pulumi.Output<string>> = {};
  /** JWT signing key, hex encoded (128 characters). */
  readonly jwtSecret: pulumi.Output<string>;

  constructor(name: string, args: PlatformSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:security:Secrets", name, {}, opts);
    const seen = new Set<string>();
    for (const credential of args.passwords) {
      if (!/^[a-z0-9-]+$/.test(credential) || seen.has(credential)) {
        throw new pulumi.ResourceError(`invalid or duplicate credential name '${credential}'`, this);
      }
      seen.add(credential);
      const password = new random.RandomPassword(
        `${name}-${credential}`,
        { length: PASSWORD_LENGTH, special: false, minUpper: 4, minLower: 4, minNumeric: 4 },
        { parent: this },
      );
      this.passwords[credential] = pulumi.secret(password.result);
    }
    const jwt = new random.RandomBytes(`${name}-jwt`, { length: JWT_KEY_BYTES }, { parent: this });
    this.jwtSecret = pulumi.secret(jwt.hex);
    // Only the names are registered: the values stay inside their (secret) resource outputs.
    this.registerOutputs({ credentials: [...seen].sort() });
  }

  password(name: string): pulumi.Output<string> {
    const value = this.passwords[name];
    if (!value) throw new pulumi.ResourceError(`no generated password named '${name}'`, this);
    return value;
  }
}
