/**
 * The images an image build pulls, whichever provider builds it: `@pulumi/docker`'s Image and
 * `@pulumi/docker-build`'s Image (tags, buildArgs, dockerfile.location / inline, context.location /
 * named), and every instruction that pulls one (FROM, COPY --from, RUN --mount=from).
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { dockerfileBases } from "../../policies/lib/dockerfile";
import { isImageBuildArg } from "../../policies/lib/image-builds";
import { writeDockerfile } from "./fixtures";
import { loadConfig, runPack, TestResource, UNKNOWN, Violation } from "./run-pack";

const messages = (vs: Violation[]) => vs.map((v) => v.message);
const PIN = "pin a version tag (postgres:16.4) or a digest (name@sha256:...).";
const pinned = (rs: TestResource[]) => runPack(rs, "prod", { only: ["pinned-image-tags"] });
const registries = (rs: TestResource[]) => runPack(rs, "prod", { only: ["allowed-image-registries"] });
const PROD_ALLOWED = (loadConfig("prod")["allowed-image-registries"] as { allowedRegistries: string[] }).allowedRegistries;
const NOT_ALLOWED = `is not from an allowed registry (allowedRegistries: ${PROD_ALLOWED.join(", ")})`;

/** A docker-build Image as the engine hands it over. */
const buildx = (name: string, props: Record<string, unknown>): TestResource =>
    ({ type: "docker-build:index:Image", name, props: { push: false, tags: [`localhost/ai-trading/${name}:0.1.0`], ...props } });
/** A docker Image building `file`. */
const classic = (name: string, file: string, args: Record<string, unknown> = {}): TestResource =>
    ({ type: "docker:index/image:Image", name, props: { imageName: `localhost/ai-trading/${name}:0.1.0`, build: { context: path.dirname(file), dockerfile: file, args }, skipPush: true } });

describe("docker RemoteImage with a build", () => {
    it("checks the images its Dockerfile (relative to build.context) pulls, and refuses one it cannot read", async () => {
        const file = writeDockerfile("FROM evil.example.net/backdoor:latest\n");
        const remote = (name: string, build: Record<string, unknown>): TestResource => ({ type: "docker:index/remoteImage:RemoteImage", name, props: { name: "localhost/ai-trading/x:0.1.0", build } });
        expect(messages(await pinned([
            remote("built", { context: path.dirname(file), dockerfile: path.basename(file) }),
            remote("relative", { context: "./app" }),
            { type: "docker:index/remoteImage:RemoteImage", name: "pulled", props: { name: "postgres:16.4-bookworm" } },
        ]))).toEqual([
            `RemoteImage "built": ${file} line 1 (FROM evil.example.net/backdoor:latest) "evil.example.net/backdoor:latest" uses the floating tag "latest"; ${PIN}`,
            "RemoteImage \"relative\": its Dockerfile \"app/Dockerfile\" cannot be read where the policies run (not an absolute path, and the policies run in the " +
            "policy pack's directory, not the program's), so the images it pulls go unchecked; give build.context as an absolute path (build.dockerfile is read inside it) on the machine running the preview.",
        ]);
    });
});

describe("docker-build Image", () => {
    it("checks its tags, its build arguments and the images its Dockerfile pulls, from a path or inline", async () => {
        const file = writeDockerfile("ARG NODE_IMAGE\nFROM ${NODE_IMAGE} AS build\nFROM debian:stable\n");
        expect(messages(await pinned([
            buildx("app", { tags: ["localhost/ai-trading/app:latest", "localhost/ai-trading/app:0.1.0"], context: { location: path.dirname(file) }, buildArgs: { NODE_IMAGE: "node" } }),
            buildx("inline", { context: { location: "." }, dockerfile: { inline: "FROM node:latest\nCOPY --from=alpine /bin/sh /sh\n" } }),
            buildx("located", { context: { location: "/nowhere" }, dockerfile: { location: file }, buildArgs: { NODE_IMAGE: "node:20.18.0" } }),
        ]))).toEqual([
            `Image "app": tag "localhost/ai-trading/app:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "app": build argument NODE_IMAGE "node" has no tag (Docker resolves it to "latest"); ${PIN}`,
            `Image "app": ${file} line 3 (FROM debian:stable) "debian:stable" uses the floating tag "stable"; ${PIN}`,
            `Image "inline": dockerfile.inline line 1 (FROM node:latest) "node:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "inline": dockerfile.inline line 2 (COPY --from=alpine) "alpine" has no tag (Docker resolves it to "latest"); ${PIN}`,
            `Image "located": ${file} line 3 (FROM debian:stable) "debian:stable" uses the floating tag "stable"; ${PIN}`,
        ]);
    });

    it("passes a pinned build, and checks the allowed registries the same way", async () => {
        const ok = buildx("ok", { context: { location: "." }, dockerfile: { inline: "FROM node:20.18.0-bookworm-slim\n" } });
        expect(await pinned([ok])).toEqual([]);
        expect(messages(await registries([ok,
            buildx("evil", { tags: ["ghcr.io/x/app:1.0"], context: { location: "." }, dockerfile: { inline: "FROM quay.io/y/z:1.0\n" } })]))
            .map((m) => m.split(": pull it")[0])).toEqual([
            `Image "ok" tag "localhost/ai-trading/ok:0.1.0" (localhost/ai-trading/ok) ${NOT_ALLOWED}`,
            `Image "evil" tag "ghcr.io/x/app:1.0" (ghcr.io/x/app) ${NOT_ALLOWED}`,
            `Image "evil" dockerfile.inline line 1 (FROM quay.io/y/z:1.0) "quay.io/y/z:1.0" (quay.io/y/z) ${NOT_ALLOWED}`,
        ]);
    });

    it("follows named contexts: an image one is what FROM pulls, a directory pulls nothing", async () => {
        const dockerfile = { inline: "FROM base\nFROM tools\nFROM pinned\n" };
        expect(messages(await pinned([buildx("named", { dockerfile, context: { location: ".", named: {
            base: { location: "docker-image://ghcr.io/x/debian:latest" }, tools: { location: "/src/tools" }, pinned: { location: UNKNOWN },
        } } })]))).toEqual([
            `Image "named": dockerfile.inline line 1 (FROM base, named context base=docker-image://ghcr.io/x/debian:latest) "ghcr.io/x/debian:latest" uses the floating tag "latest"; ${PIN}`,
        ]);
        // Named contexts unknown during preview: nothing is known of what FROM pulls.
        expect(await pinned([buildx("named-unknown", { dockerfile, context: { location: ".", named: UNKNOWN } })])).toEqual([]);
    });

    it("refuses a build whose Dockerfile it cannot read, naming docker-build's fields", async () => {
        const fix = "give dockerfile.location (or context.location) as an absolute path to a Dockerfile on the machine running the preview, or the Dockerfile itself as dockerfile.inline.";
        const unseen = (who: string, file: string, why: string) =>
            `Image "${who}": its Dockerfile "${file}" cannot be read where the policies run (${why}), so the images it pulls go unchecked; ${fix}`;
        const RELATIVE = "not an absolute path, and the policies run in the policy pack's directory, not the program's";
        expect(messages(await pinned([
            buildx("relative", { context: { location: "app" } }),
            buildx("relative-file", { context: { location: "/abs" }, dockerfile: { location: "app/Dockerfile" } }),
            buildx("remote", { context: { location: "https://example.com/repo.git#main" } }),
            buildx("no-context", {}),
        ]))).toEqual([
            unseen("relative", path.join("app", "Dockerfile"), RELATIVE),
            unseen("relative-file", "app/Dockerfile", RELATIVE),
            unseen("remote", "https://example.com/repo.git#main", "it is inside that remote build context, not on this machine"),
            unseen("no-context", "Dockerfile", RELATIVE),
        ]);
    });

    it("skips what is unknown during preview", async () => {
        expect(await pinned([
            buildx("unknown-dockerfile", { context: { location: "." }, dockerfile: UNKNOWN }),
            buildx("unknown-inline", { context: { location: "." }, dockerfile: { inline: UNKNOWN } }),
            buildx("unknown-context", { context: UNKNOWN }),
            buildx("unknown-tags", { tags: UNKNOWN, context: { location: "." }, dockerfile: { inline: "FROM node:20.18.0\n" } }),
            buildx("unknown-args", { context: { location: "." }, dockerfile: { inline: "ARG IMG=node:latest\nFROM ${IMG}\n" }, buildArgs: UNKNOWN }),
        ])).toEqual([]);
    });
});

describe("the images a Dockerfile pulls without building on them", () => {
    it("checks COPY --from and RUN --mount=from images, not stages (by name or index) nor cache mounts", async () => {
        const file = writeDockerfile([
            "FROM node:20.18.0 AS build",
            "COPY --from=build /a /b",
            "COPY --from=0 /a /b",
            "copy --chown=1:1 --from=ghcr.io/x/tools:latest /bin/t /t",
            "RUN --mount=type=cache,target=/root/.npm --mount=type=bind,from=busybox,target=/bb \\",
            "    ls /bb",
            "ONBUILD COPY --from=onbuild:latest /a /b",
        ].join("\n"));
        expect(messages(await pinned([classic("copies", file)]))).toEqual([
            `Image "copies": ${file} line 4 (COPY --from=ghcr.io/x/tools:latest) "ghcr.io/x/tools:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "copies": ${file} line 5 (RUN --mount=type=bind,from=busybox,target=/bb) "busybox" has no tag (Docker resolves it to "latest"); ${PIN}`,
        ]);
    });

    it("resolves build arguments in --from as in FROM, and leaves a checked image argument to its own check", async () => {
        const file = writeDockerfile("ARG TOOLS=ghcr.io/x/tools:latest\nARG NODE_IMAGE\nFROM scratch\nCOPY --from=${TOOLS} /t /t\nCOPY --from=${NODE_IMAGE} /n /n\n");
        expect(messages(await pinned([classic("args", file, { NODE_IMAGE: "node:latest" })]))).toEqual([
            `Image "args": build argument NODE_IMAGE "node:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "args": ${file} line 4 (COPY --from=\${TOOLS}) "ghcr.io/x/tools:latest" uses the floating tag "latest"; ${PIN}`,
        ]);
    });
});

describe("this repo's Dockerfiles", () => {
    it("pull no image but through a build argument named as an image (which the policies check where it is given)", () => {
        const root = path.join(__dirname, "..", "..");
        const files = [
            ...fs.readdirSync(path.join(root, "images")).map((d) => path.join(root, "images", d, "Dockerfile")).filter((f) => fs.existsSync(f)),
            path.join(root, "services", "Dockerfile"), path.join(root, "ml", "Dockerfile"),
        ];
        expect(files.length).toBeGreaterThan(5);
        const unchecked = files.flatMap((file) => {
            const text = fs.readFileSync(file, "utf8");
            const imageArgs = [...text.matchAll(/^\s*ARG\s+(\w+)/gim)].map((m) => m[1]).filter(isImageBuildArg);
            return dockerfileBases(text, Object.fromEntries(imageArgs.map((a) => [a, "given:1"])))
                .filter((base) => base.fromArg === undefined || !isImageBuildArg(base.fromArg))
                .map((base) => `${path.relative(root, file)}:${base.line}: ${base.written}`);
        });
        expect(unchecked).toEqual([]);
    });
});

describe("names every object answers", () => {
    it("are build arguments and named contexts like any other (constructor, __proto__, toString)", async () => {
        const file = writeDockerfile("ARG constructor\nARG toString=node:latest\nFROM ${constructor}\nFROM ${toString}\nFROM constructor\nCOPY --from=__proto__ /a /b\n");
        expect(messages(await pinned([classic("protos", file)]))).toEqual([
            `Image "protos": ${file} line 4 (FROM \${toString}) "node:latest" uses the floating tag "latest"; ${PIN}`,
            `Image "protos": ${file} line 5 (FROM constructor) "constructor" has no tag (Docker resolves it to "latest"); ${PIN}`,
            `Image "protos": ${file} line 6 (COPY --from=__proto__) "__proto__" has no tag (Docker resolves it to "latest"); ${PIN}`,
        ]);
        expect(messages(await pinned([buildx("named-protos", { context: { location: ".", named: { base: { location: "docker-image://node:20.18.0" } } },
            dockerfile: { inline: "FROM constructor\nFROM base\n" } })]))).toEqual([
            `Image "named-protos": dockerfile.inline line 1 (FROM constructor) "constructor" has no tag (Docker resolves it to "latest"); ${PIN}`,
        ]);
    });
});

describe("images pushed or joined", () => {
    it("checks a docker-build Index's tag and sources and a RegistryImage's name", async () => {
        const index: TestResource = { type: "docker-build:index:Index", name: "multi", props: { tag: "ghcr.io/x/app:latest", sources: ["ghcr.io/x/app:1.0-amd64", "quay.io/y/app", UNKNOWN], push: true } };
        const pushed: TestResource = { type: "docker:index/registryImage:RegistryImage", name: "pushed", props: { name: "registry.example.com/ai-trading/app:stable", keepRemotely: true } };
        expect(messages(await pinned([index, pushed]))).toEqual([
            `Index "multi": tag "ghcr.io/x/app:latest" uses the floating tag "latest"; ${PIN}`,
            `Index "multi": source "quay.io/y/app" has no tag (Docker resolves it to "latest"); ${PIN}`,
            `RegistryImage "pushed": name "registry.example.com/ai-trading/app:stable" uses the floating tag "stable"; ${PIN}`,
        ]);
        expect(messages(await registries([index])).map((m) => m.split(": pull it")[0])).toEqual([
            `Index "multi" tag "ghcr.io/x/app:latest" (ghcr.io/x/app) ${NOT_ALLOWED}`,
            `Index "multi" source "ghcr.io/x/app:1.0-amd64" (ghcr.io/x/app) ${NOT_ALLOWED}`,
            `Index "multi" source "quay.io/y/app" (quay.io/y/app) ${NOT_ALLOWED}`,
        ]);
    });
});
