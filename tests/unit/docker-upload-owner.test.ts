/**
 * Secret files on the Docker target are owner-only (0400), so they must belong to the container's
 * non-root user (the upload's numeric owner and group, which tools/providers/docker writes into the
 * archive's tar headers or chowns on the bind-mounted host file): root-owned, the Nginx edge could
 * not read a stack-supplied TLS key, nor the upstream Redis image (uid 999) its redis.conf.
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { dockerNumericUser, dockerUploads } from "../../components/runtime/docker";
import { WorkloadSpec } from "../../components/workload";
import { upstreamImages } from "../../stacks/images";
import { inputProblems, providerSchema } from "../helpers/provider-schema";
import { named, runProgram } from "../helpers/program";

const CONTAINER = "docker:index/container:Container";
const tls = { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" };

interface Upload {
  file: string;
  content: string;
  permissions: string;
  owner?: string;
  group?: string;
}

function uploadsOf(run: Awaited<ReturnType<typeof runProgram>>, container: string): Record<string, Upload> {
  const c = named(run, CONTAINER, container);
  return Object.fromEntries((c.inputs.uploads as Upload[]).map((u) => [u.file, u]));
}

// Each case runs the whole program under mocks (see tests/unit/program.test.ts).
describe("secret uploads on the Docker target belong to the container's user", { timeout: 300_000 }, () => {
  it("upstream images: the edge's TLS key (user nginx, uid 101) and Redis's redis.conf (uid 999)", async () => {
    const run = await runProgram("dev", { imageSource: "upstream", redisEnabled: "true" }, tls);
    const schema = providerSchema("docker");

    const nginx = uploadsOf(run, "nginx-container");
    expect(named(run, CONTAINER, "nginx-container").inputs.user).toBe(upstreamImages.nginx.user?.name);
    expect(nginx["/etc/nginx/tls/tls.key"]).toEqual({ file: "/etc/nginx/tls/tls.key", content: tls.tlsPrivateKey, permissions: "0400", owner: "101", group: "101" });
    // Not secret: root-owned and world-readable, as before.
    expect(nginx["/etc/nginx/tls/tls.crt"]).toEqual({ file: "/etc/nginx/tls/tls.crt", content: tls.tlsCertificate, permissions: "0444" });
    expect(nginx["/etc/nginx/nginx.conf"]).toMatchObject({ permissions: "0444" });
    expect(nginx["/etc/nginx/nginx.conf"].owner).toBeUndefined();
    // The key stays a secret in the state.
    expect(named(run, CONTAINER, "nginx-container").secretPaths.some((p) => p.startsWith("uploads"))).toBe(true);

    const redis = uploadsOf(run, "redis-container");
    expect(named(run, CONTAINER, "redis-container").inputs.user).toBe("999:999");
    expect(redis["/usr/local/etc/redis/redis.conf"]).toMatchObject({ permissions: "0400", owner: "999", group: "999" });
    expect(redis["/usr/local/etc/redis/redis.conf"].content).toMatch(/^requirepass Mock\w+\nappendonly yes\n/);

    // What the plugin implements (schema.json): owner and group are accepted inputs.
    for (const name of ["nginx-container", "redis-container"]) {
      expect(inputProblems(schema, CONTAINER, named(run, CONTAINER, name).inputs), name).toEqual([]);
    }
  });

  it("local images: the edge's TLS key belongs to www-data (uid 33), the user the local Nginx build runs as", async () => {
    const run = await runProgram("dev", {}, tls);
    expect(named(run, CONTAINER, "nginx-container").inputs.user).toBe("www-data");
    expect(uploadsOf(run, "nginx-container")["/etc/nginx/tls/tls.key"]).toMatchObject({ permissions: "0400", owner: "33", group: "33" });
  });
});

const spec = (security: Partial<WorkloadSpec["security"]>, files: WorkloadSpec["files"]): WorkloadSpec => ({
  name: "w",
  role: "datastore",
  kind: "stateless",
  image: "i",
  env: {},
  secretEnv: {},
  ports: [],
  volumes: [],
  files,
  liveness: undefined,
  resources: { cpu: "1", memory: "1Gi" },
  replicas: 1,
  security: { readOnlyRootFilesystem: true, scratchDirs: [], ...security },
  connectsTo: [],
  acceptsFrom: [],
});

describe("dockerNumericUser / dockerUploads", () => {
  it("takes the numeric user from a numeric dockerUser, else runAsUser/runAsGroup, else scratchOwnerUid", () => {
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [], dockerUser: "1000:1001", runAsUser: 5 })).toEqual({ uid: 1000, gid: 1001 });
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [], dockerUser: "1000", runAsGroup: 7 })).toEqual({ uid: 1000, gid: 7 });
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [], dockerUser: "redis", runAsUser: 999, runAsGroup: 998 })).toEqual({ uid: 999, gid: 998 });
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [], runAsUser: 10001 })).toEqual({ uid: 10001, gid: 10001 });
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [], dockerUser: "nginx", scratchOwnerUid: 101 })).toEqual({ uid: 101, gid: 101 });
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [], dockerUser: "nginx" })).toBeUndefined();
    expect(dockerNumericUser({ readOnlyRootFilesystem: true, scratchDirs: [] })).toBeUndefined();
  });

  it("fails on a secret file without a numeric user, naming the workload and the file; plain files need none", async () => {
    const secret = { path: "/etc/app/key.pem", content: "k", secret: true };
    const plain = { path: "/etc/app/app.conf", content: "c" };
    expect(() => dockerUploads(spec({ dockerUser: "app" }, [plain, secret]))).toThrow(
      /workload 'w': secret file \/etc\/app\/key\.pem .*numeric uid.*its user 'app' is a name.*security\.runAsUser/,
    );
    expect(() => dockerUploads(spec({}, [secret]))).toThrow(/workload 'w': secret file \/etc\/app\/key\.pem .*it names no user/);
    expect(dockerUploads(spec({ dockerUser: "app" }, [plain]))).toEqual([{ file: "/etc/app/app.conf", content: "c", permissions: "0444" }]);
    const uploads = dockerUploads(spec({ runAsUser: 472, runAsGroup: 0 }, [plain, secret]));
    expect(uploads).toEqual([
      { file: "/etc/app/app.conf", content: "c", permissions: "0444" },
      { file: "/etc/app/key.pem", content: expect.anything(), permissions: "0400", owner: "472", group: "0" },
    ]);
    // Session 44: a secret file's content is a Pulumi secret in the state, even when given as a plain string.
    expect(pulumi.Output.isInstance(uploads[1].content)).toBe(true);
    expect(await pulumi.isSecret(uploads[1].content as pulumi.Output<string>)).toBe(true);
    expect(() => dockerUploads(spec({ runAsUser: -1 }, [secret]))).toThrow(/uid -1 is not a non-negative integer/);
  });
});
