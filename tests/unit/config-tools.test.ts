/**
 * The generated Nginx and Prometheus configuration, checked by the tools that will load it
 * (`nginx -t`, `promtool check`), installed by scripts/deps/install-test-deps.sh.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";
import { nginxConfig, TLS_DIR } from "../../components/edge/nginx";
import { alertRulesYaml, prometheusConfig, RULES_PATH } from "../../components/monitoring/prometheus";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "trading-conf-"));

describe("generated configuration accepted by the real tools", () => {
  it("nginx -t accepts the edge configuration", () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, "tls"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-keyout", path.join(dir, "tls", "tls.key"), "-out", path.join(dir, "tls", "tls.crt"),
    ], { stdio: "ignore" });
    // The gateway's DNS name exists only inside the Docker network; loopback stands in for it.
    const conf = nginxConfig({ services: catalog, gateway: { host: "127.0.0.1", port: 3001 }, publicHttpsPort: 8443, serverName: "localhost" })
      .replaceAll(TLS_DIR, path.join(dir, "tls"));
    fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
    // stdout to /dev/null: the config logs to /dev/stdout, which a container's pipe allows but a
    // socketpair (the default here) does not.
    const r = spawnSync("nginx", ["-t", "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], {
      encoding: "utf8",
      stdio: ["ignore", "ignore", "pipe"],
    });
    expect(r.stderr, r.stderr).toContain("test is successful");
  });

  it("promtool accepts the scrape configuration and the alert rules", () => {
    const dir = tmp();
    const rules = path.join(dir, "rules.yml");
    fs.writeFileSync(rules, alertRulesYaml());
    fs.writeFileSync(path.join(dir, "prometheus.yml"), prometheusConfig(catalog, 15, ["ml-predictor-retrain"]).replace(RULES_PATH, rules));
    const checkRules = spawnSync("promtool", ["check", "rules", rules], { encoding: "utf8" });
    expect(checkRules.status, checkRules.stdout + checkRules.stderr).toBe(0);
    expect(checkRules.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const checkConfig = spawnSync("promtool", ["check", "config", path.join(dir, "prometheus.yml")], { encoding: "utf8" });
    expect(checkConfig.status, checkConfig.stdout + checkConfig.stderr).toBe(0);
  });
});
