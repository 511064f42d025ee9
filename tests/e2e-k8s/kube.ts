/**
 * Helpers of the local-cluster suite: kubectl (the one built by scripts/cluster/build.sh) with the
 * cluster's admin kubeconfig, port-forwards, HTTPS to the Ingress verified against a given CA.
 * Everything is asynchronous: a blocked test worker loses its RPC link with vitest.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { IncomingHttpHeaders } from "http";
import * as https from "https";
import * as os from "os";
import * as path from "path";

export const root = path.join(__dirname, "..", "..");

/** Values of scripts/cluster/lib.sh and versions.env, read through bash so there is one source. */
function clusterVars(): Record<string, string> {
  const names = ["K8S_CACHE", "K8S_BIN", "KUBECONFIG_PATH", "PKI_DIR", "NODE_IP", "BRIDGE", "RUN_DIR", "CONTAINERD_STATE", "IMAGES_DIR"];
  const r = spawnSync("bash", ["-c", `source scripts/cluster/lib.sh && for n in ${names.join(" ")}; do echo "$n=\${!n}"; done`], {
    cwd: root,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`scripts/cluster/lib.sh: ${r.stderr}`);
  return Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}
export const cluster = clusterVars();
export const kubectlPath = path.join(cluster.K8S_BIN, "kubectl");

export function clusterReady(): boolean {
  return spawnSync("bash", [path.join(root, "scripts/cluster/kubeconfig.sh")], { encoding: "utf8" }).status === 0;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking; rejects on a non-zero exit unless allowFailure. */
export function run(cmd: string, args: string[], opts: { allowFailure?: boolean; timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: opts.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const result = { status: code ?? -1, stdout, stderr };
      if (result.status !== 0 && !opts.allowFailure) reject(new Error(`${cmd} ${args.join(" ")} exited ${result.status}: ${stderr.slice(-3000)}`));
      else resolve(result);
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

export const kubectl = (args: string[], opts: { allowFailure?: boolean; timeoutMs?: number; input?: string } = {}) =>
  run(kubectlPath, ["--kubeconfig", cluster.KUBECONFIG_PATH, ...args], opts);

export async function getJson(args: string[]): Promise<any> {
  return JSON.parse((await kubectl(["get", ...args, "-o", "json"])).stdout);
}

/** `kubectl port-forward` on a free local port; resolves with the port and a stop function. */
export function portForward(namespace: string, target: string, remotePort: number): Promise<{ port: number; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(kubectlPath, ["--kubeconfig", cluster.KUBECONFIG_PATH, "-n", namespace, "port-forward", target, `:${remotePort}`, "--address", "127.0.0.1"]);
    let out = "";
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`port-forward ${target}: no port after 60s: ${out}`));
    }, 60_000);
    const onData = (c: Buffer) => {
      out += c;
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), stop: () => child.kill() });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`port-forward ${target} exited ${code}: ${out}`));
    });
  });
}

export interface HttpResult {
  status: number;
  json: any;
  text: string;
  headers: IncomingHttpHeaders;
}

/** HTTPS to the Ingress on the node IP, SNI and Host = host, verified against `ca` (no skip). */
export function ingressRequest(host: string, ca: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      {
        host: cluster.NODE_IP,
        port: 443,
        servername: host,
        ca,
        path: urlPath,
        method,
        agent: false,
        headers: { host, ...(data ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(data)) } : {}), ...headers },
        // Generous: a register or login hashes a password on a CPU-limited pod of a loaded node.
        timeout: 90_000,
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text, headers: res.headers });
        });
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    if (data) req.write(data);
    req.end();
  });
}

/** Plain HTTP to the Ingress on the node IP (port 80): status and Location only. */
export function httpRequest(host: string, urlPath: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: cluster.NODE_IP, port: 80, path: urlPath, headers: { host }, agent: false, timeout: 20_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

export async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, seconds = 180): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (ok(v)) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`${what} not reached in ${seconds}s; last: ${JSON.stringify(last instanceof Error ? last.message : last)?.slice(0, 800)}`);
}

/**
 * Waits for a Job to end either way (`kubectl wait` waits for one condition only: a Job that failed
 * would be waited on until the timeout); resolves true when it completed, false when it failed.
 */
export async function jobSucceeded(namespace: string, name: string, seconds: number): Promise<boolean> {
  const ended = (j: any) => (j.status?.conditions ?? []).find((c: any) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
  const job = await eventually(`job ${name} ended`, () => getJson(["-n", namespace, "job", name]), (j) => ended(j) !== undefined, seconds);
  return ended(job).type === "Complete";
}

/** A restricted-compliant throwaway pod running the netcheck image (scripts/cluster/netcheck). */
export function netcheckPod(name: string, namespace: string, args: string[], labels: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { "e2e.trading.io/throwaway": "true", ...labels } },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "netcheck",
          image: "docker.io/local/netcheck:dev",
          imagePullPolicy: "Never",
          args,
          resources: { limits: { cpu: "100m", memory: "32Mi" } },
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  });
}

/** Runs a netcheck pod to completion; resolves with its phase (Succeeded = every check passed). */
export async function runNetcheck(name: string, namespace: string, args: string[], labels: Record<string, string> = {}): Promise<{ phase: string; log: string }> {
  await kubectl(["-n", namespace, "delete", "pod", name, "--ignore-not-found", "--wait=true"]);
  await kubectl(["apply", "-f", "-"], { input: netcheckPod(name, namespace, args, labels) });
  const pod = await eventually(
    `pod ${name} finished`,
    () => getJson(["-n", namespace, "pod", name]),
    (p) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed",
    120,
  );
  const log = (await kubectl(["-n", namespace, "logs", name], { allowFailure: true })).stdout;
  await kubectl(["-n", namespace, "delete", "pod", name, "--ignore-not-found", "--wait=false"]);
  return { phase: pod.status.phase, log };
}

export const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), "trading-e2e-k8s-"));
