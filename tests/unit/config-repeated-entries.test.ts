/**
 * Repeated entries in the stack configuration (session 63's review): an entry a list key holds twice, a
 * name a JSON object key gives twice, and a CIDR prefix length written with leading zeros were taken
 * without a word. Each is now a ConfigError naming the key, the stack and the repeated entry (or the
 * prefix), compared in the form the program uses (a trusted proxy as the range the gateway matches, a
 * service name as the catalog spells it, a JSON name as JSON.parse decodes it).
 */
import { describe, expect, it } from "vitest";
import { parseStackConfig } from "../../stacks/config";
import { configError as error, dockerConfig as docker, kubernetesConfig as k8s } from "../helpers/stack-config";

const prefix = (key: string, stack: string) => `Invalid configuration trading:${key} on stack '${stack}': `;

describe("trustedProxies: each range once", () => {
  it("refuses an entry listed twice, as written or in another spelling of the same range", () => {
    // Before: each was taken and handed to the gateway as it was.
    for (const [v, first, second] of [
      ["10.244.0.0/16, 10.244.0.0/16", "10.244.0.0/16", "10.244.0.0/16"],
      ["10.244.0.0/16,10.244.7.1/16", "10.244.0.0/16", "10.244.7.1/16"],
      ["172.28.0.2, 10.0.0.5, 172.28.0.2/32", "172.28.0.2", "172.28.0.2/32"],
      ["fd00:10::/48, FD00:10:0::/48", "fd00:10::/48", "FD00:10:0::/48"],
      ["fd00:10::/48, fd00:10:0:ffff::/48", "fd00:10::/48", "fd00:10:0:ffff::/48"],
      ["::1, 0:0:0:0:0:0:0:1/128", "::1", "0:0:0:0:0:0:0:1/128"],
    ]) {
      const e = error("prod", { ...k8s, trustedProxies: v });
      expect(e.key, v).toBe("trustedProxies");
      expect(e.message, v).toBe(
        first === second
          ? `${prefix("trustedProxies", "prod")}lists '${first}' twice: give each range once`
          : `${prefix("trustedProxies", "prod")}lists '${first}' and '${second}', the same range to the gateway (it matches the bits of the address up to the prefix length, in any IPv6 spelling): give each range once`,
      );
    }
    expect(error("dev", { ...docker, trustedProxies: "172.28.0.0/24,172.28.0.0/24" }).message).toMatch(/^Invalid configuration trading:trustedProxies on stack 'dev': lists '172.28.0.0\/24' twice/);
  });

  it("keeps different ranges, nested ones too (a narrower range inside a wider one is no repeat)", () => {
    for (const v of ["10.244.0.0/16, 10.245.0.0/16", "10.244.0.0/16, 10.244.0.0/24", "10.244.0.5, 10.244.0.6", "fd00:10::/48, fd00:11::/48, fd00:10::/64", "10.244.0.5, 127.0.0.1, ::1"]) {
      expect(parseStackConfig("prod", { ...k8s, trustedProxies: v }).trustedProxies, v).toBe(v);
    }
  });
});

describe("disabledServices: each service once", () => {
  it("refuses a service named twice", () => {
    for (const v of ["chain-debug,chain-debug", "chain-debug, revenue-analytics, chain-debug", " chain-debug ,chain-debug"]) {
      const e = error("dev", { ...docker, disabledServices: v });
      expect(e.message, v).toBe(`${prefix("disabledServices", "dev")}names 'chain-debug' twice: give each service once`);
    }
  });

  it("compares names as the program does, exactly: another case is no catalog service", () => {
    expect(error("dev", { ...docker, disabledServices: "chain-debug,Chain-Debug" }).message).toBe(`${prefix("disabledServices", "dev")}'Chain-Debug' is not a service of the catalog: did you mean 'chain-debug'?`);
    expect(parseStackConfig("dev", { ...docker, disabledServices: "chain-debug,revenue-analytics" }).services.map((s) => s.name)).not.toContain("chain-debug");
  });
});

describe("a CIDR's prefix length with leading zeros", () => {
  it("is refused in trustedProxies, naming the entry (before: /016 was taken, read as /16 by the gateway)", () => {
    for (const [v, entry, fixed] of [["10.0.0.0/016", "10.0.0.0/016", 16], ["10.244.0.5, 10.244.0.0/0016", "10.244.0.0/0016", 16], ["fd00:10::/048", "fd00:10::/048", 48], ["172.28.0.2/032", "172.28.0.2/032", 32]] as const) {
      const e = error("prod", { ...k8s, trustedProxies: v });
      expect(e.key, v).toBe("trustedProxies");
      expect(e.message, v).toBe(`${prefix("trustedProxies", "prod")}'${entry}': its prefix length /${entry.split("/")[1]} has a leading zero, which some readers take for octal: write /${fixed}`);
    }
  });

  it("is refused in dockerSubnet, the Docker network the stack creates (and its default trustedProxies)", () => {
    const e = error("dev", { ...docker, dockerSubnet: "172.28.0.0/024" });
    expect(e.message).toBe(`${prefix("dockerSubnet", "dev")}'172.28.0.0/024': its prefix length /024 has a leading zero, which some readers take for octal: write /24`);
  });

  it("keeps /0-free prefixes as they are", () => {
    expect(parseStackConfig("dev", { ...docker, dockerSubnet: "10.1.0.0/16", trustedProxies: "10.1.0.0/16, 10.2.0.0/20" })).toMatchObject({ trustedProxies: "10.1.0.0/16, 10.2.0.0/20", docker: { subnet: "10.1.0.0/16" } });
  });
});

describe("serviceReplicas and serviceSettings: each name once", () => {
  it("refuses a service named twice in serviceReplicas (before: JSON.parse kept the last, 3, without a word)", () => {
    for (const v of ['{"api-gateway": 2, "api-gateway": 3}', '{"api-gateway":2,"trading-engine":2,"api-gateway":3}', '{"api-gateway": 2, "api-\\u0067ateway": 3}']) {
      const e = error("prod", { ...k8s, serviceReplicas: v });
      expect(e.message, v).toBe(`${prefix("serviceReplicas", "prod")}names 'api-gateway' twice: JSON keeps only the last value of a repeated name, so the other would be dropped without a word; give each name once`);
    }
  });

  it("refuses a service or a variable named twice in serviceSettings, naming where", () => {
    const um = (vars: string) => `{"user-management": {${vars}}}`;
    expect(error("prod", { ...k8s, serviceSettings: um('"ACCESS_TOKEN_TTL_S": 600, "ACCESS_TOKEN_TTL_S": 900') }).message).toBe(
      `${prefix("serviceSettings", "prod")}names 'ACCESS_TOKEN_TTL_S' twice in 'user-management': JSON keeps only the last value of a repeated name, so the other would be dropped without a word; give each name once`,
    );
    expect(error("prod", { ...k8s, serviceSettings: '{"user-management": {"ACCESS_TOKEN_TTL_S": 600}, "user-management": {}}' }).message).toBe(
      `${prefix("serviceSettings", "prod")}names 'user-management' twice: JSON keeps only the last value of a repeated name, so the other would be dropped without a word; give each name once`,
    );
    // A name is shown as the other refusals show it: escaped, never printed raw.
    expect(error("prod", { ...k8s, serviceSettings: '{"a\\u202eb": 1, "a\\u202eb": 2}' }).message).toContain("names 'a\\u202eb' twice");
  });

  it("keeps the same name in different objects, and a name spelt alike inside a string value", () => {
    const settings = '{"user-management": {"POSTGRES_POOL_MAX": 4}, "database-service": {"POSTGRES_POOL_MAX": 4}}';
    expect(parseStackConfig("prod", { ...k8s, serviceSettings: settings }).serviceSettings).toEqual({ "user-management": { POSTGRES_POOL_MAX: 4 }, "database-service": { POSTGRES_POOL_MAX: 4 } });
    expect(parseStackConfig("prod", { ...k8s, serviceReplicas: '{"api-gateway": 3, "user-management": 2}' }).serviceReplicas).toMatchObject({ "api-gateway": 3, "user-management": 2 });
    // Quotes, colons and braces inside a name are part of it: '{\"a\":' is one name, not a nested object.
    expect(error("prod", { ...k8s, serviceReplicas: '{"x\\": {\\"x\\": 1": 2, "x": 3}' }).message).toContain("is not a service of the catalog");
  });

  it("stays linear on a long or deeply nested value (a scan, no recursion)", () => {
    const deep = `{"api-gateway": ${"[".repeat(200_000)}${"]".repeat(200_000)}}`;
    expect(error("prod", { ...k8s, serviceReplicas: deep }).message).toContain("replicas of 'api-gateway' must be an integer");
    const many = `{${Array.from({ length: 50_000 }, (_, i) => `"s${i}": 1`).join(",")}, "s7": 2}`;
    const started = Date.now();
    expect(error("prod", { ...k8s, serviceReplicas: many }).message).toContain("names 's7' twice");
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe("cron schedules: each value of a field once", () => {
  it("refuses a value listed twice or inside another range, naming the key and the field (before: taken, run once at it)", () => {
    for (const [key, v, field, value, where] of [
      ["backupSchedule", "15,15 2 * * *", "minute", 15, "'15' listed twice"],
      ["backupSchedule", "0 1-5,3 * * *", "hour", 3, "in '1-5' and in '3'"],
      ["mlRetrainSchedule", "30 3 * * MON-FRI,wed", "day-of-week", 3, "in 'MON-FRI' and in 'wed'"],
      ["mlRetrainSchedule", "30 3 1,*,15 * *", "day-of-month", 1, "in '1' and in '*'"],
      ["backupSchedule", "0 2 * JAN,1 *", "month", 1, "in 'JAN' and in '1'"],
    ] as const) {
      const e = error("prod", { ...k8s, [key]: v });
      expect(e.key, v).toBe(key);
      expect(e.message, v).toBe(
        `${prefix(key, "prod")}its ${field} field gives ${value} twice (${where}): the job runs once at a value however often it is listed, so a repeat is a slip (another value meant?): give each value once, got '${v}'`,
      );
    }
  });

  it("keeps distinct values and ranges, and steps that meet (every 4 and every 6 hours: both at 0 and 12)", () => {
    for (const v of ["15,45 2 * * *", "0 1-5,7 * * *", "0 */6,*/4 * * *", "30 3 * * MON-WED,FRI", "0 2 1,15 JAN,JUL *"]) {
      expect(parseStackConfig("dev", { ...docker, mlRetrainSchedule: v }).jobSchedules.mlRetrainSchedule, v).toBe(v);
    }
  });
});
