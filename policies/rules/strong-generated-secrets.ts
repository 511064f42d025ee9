import { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import * as random from "@pulumi/random";
import { readConfig } from "../lib/config";
import { num, plain } from "../lib/values";

export const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";
export const RANDOM_STRING = "random:index/randomString:RandomString";
export const RANDOM_BYTES = "random:index/randomBytes:RandomBytes";
export const RANDOM_ID = "random:index/randomId:RandomId";

export interface StrongSecretsConfig {
    /** Minimum characters of a generated password (the guide: `openssl rand -base64 32`). */
    minPasswordLength: number;
    /** Minimum size of a JWT signing key, in bytes (the guide: `openssl rand -hex 64`). */
    minJwtBytes: number;
    /** Resource names matching this (case-insensitive regex) are JWT signing keys. */
    jwtNamePattern: string;
}

const defaults: StrongSecretsConfig = { minPasswordLength: 32, minJwtBytes: 64, jwtNamePattern: "jwt" };

const CREDENTIAL_NAME = /(pass|secret|token|key|cred|jwt)/i;

/**
 * The entropy problem of a generated secret, or undefined when strong enough. Length is in
 * characters for RandomPassword/RandomString (one printable character >= one byte of key material
 * for HMAC keys) and in bytes for RandomBytes (`length`) and RandomId (`byteLength`).
 */
export function weakGeneratedSecret(type: string, name: string, props: Record<string, any>, cfg: StrongSecretsConfig = defaults): string | undefined {
    const isJwt = new RegExp(cfg.jwtNamePattern, "i").test(name);
    let size: number | undefined;
    let unit: string;
    switch (type) {
        case RANDOM_PASSWORD:
            size = num(props.length); unit = "characters"; break;
        case RANDOM_STRING:
            if (!isJwt && !CREDENTIAL_NAME.test(name)) return undefined; // a name suffix, not a secret
            size = num(props.length); unit = "characters"; break;
        case RANDOM_BYTES:
            size = num(props.length); unit = "bytes"; break;
        case RANDOM_ID:
            if (!isJwt && !CREDENTIAL_NAME.test(name)) return undefined;
            size = num(props.byteLength); unit = "bytes"; break;
        default:
            return undefined;
    }
    const min = isJwt ? cfg.minJwtBytes : cfg.minPasswordLength;
    if (size === undefined) return undefined; // unknown during preview
    if (size < min) {
        return isJwt
            ? `is a JWT signing key of ${size} ${unit}; it must be at least ${cfg.minJwtBytes} bytes (the guide: \`openssl rand -hex 64\`). Set length: ${cfg.minJwtBytes} or more.`
            : `generates a secret of ${size} ${unit}; it must be at least ${cfg.minPasswordLength} (the guide: \`openssl rand -base64 32\`). Set length: ${cfg.minPasswordLength} or more.`;
    }
    return undefined;
}

function validateGenerated(props: object, args: ResourceValidationArgs, reportViolation: ReportViolation): void {
    const problem = weakGeneratedSecret(args.type, args.name, plain(props as Record<string, any>), readConfig(args, defaults));
    if (problem) reportViolation(`${args.type.split(":").pop()} "${args.name}" ${problem}`);
}

export const strongGeneratedSecrets: ResourceValidationPolicy = {
    name: "strong-generated-secrets",
    description:
        "Generated credentials are long enough: random passwords >= 32 characters, JWT signing keys >= 64 bytes.",
    severity: "high",
    configSchema: {
        properties: {
            minPasswordLength: { type: "integer", minimum: 1, default: 32 },
            minJwtBytes: { type: "integer", minimum: 1, default: 64 },
            jwtNamePattern: { type: "string", default: "jwt" },
        },
    },
    validateResource: [
        validateResourceOfType(random.RandomPassword, validateGenerated),
        validateResourceOfType(random.RandomString, validateGenerated),
        validateResourceOfType(random.RandomBytes, validateGenerated),
        validateResourceOfType(random.RandomId, validateGenerated),
    ],
};
