/**
 * The components' own guards on image references (a datastore's image, the tags of the images the
 * program builds) use the policy pack's definition of "pinned" (catalog/images.ts): a floating tag
 * other than `latest` (stable, alpine, mainline...) used to pass them. The stack config refuses the
 * same references first (tests/unit/config.test.ts); these guard every other caller.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { Postgres } from "../../components/data";
import { ServicesImage, TrainerImage } from "../../components/services";
import { Runtime } from "../../components/workload";
import { LOCAL_REPOSITORY, upstreamImages } from "../../stacks/images";
import { UnmockedError } from "../helpers/program";

/** Thrown by the fake runtime: the component got past its guard and asked for a workload or a build. */
class GuardPassed extends Error {}

const runtime = {
  deploy() {
    throw new GuardPassed();
  },
  buildImage() {
    throw new GuardPassed();
  },
} as Partial<Runtime> as Runtime;

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      // Only the components themselves: their guard runs first, and the fake runtime stops them after it.
      newResource: (args) => {
        if (!args.type.startsWith("trading:")) throw new UnmockedError(`unmocked resource type ${args.type} (${args.name})`);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => {
        throw new UnmockedError(`unmocked call ${args.token}`);
      },
    },
    "trading",
    "test",
    false,
  );
});

function postgres(ref: string): Postgres {
  return new Postgres("postgres", {
    runtime,
    image: { ...upstreamImages.postgres, ref },
    password: pulumi.output("not-a-real-password"),
    storageGi: 1,
    publish: false,
    externalHost: "127.0.0.1",
    acceptsFrom: [],
  });
}

describe("the datastore component refuses an unpinned image (ResourceError)", () => {
  it.each([
    ["postgres:stable", 'uses the floating tag "stable"'],
    ["postgres:alpine", 'uses the floating tag "alpine"'],
    ["postgres:latest", 'uses the floating tag "latest"'],
    ["postgres", 'has no tag (Docker resolves it to "latest")'],
    ["registry.example.com:5000/postgres", 'has no tag (Docker resolves it to "latest")'],
    ["postgres@sha256:abc", 'has a malformed digest "sha256:abc"'],
    ["", "is empty"],
  ])("%j %s", (ref, reason) => {
    let thrown: unknown;
    try {
      postgres(ref);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(pulumi.ResourceError);
    expect((thrown as Error).message).toContain(`postgres: image '${ref}' ${reason}: it must be pinned to a version tag or a digest`);
  });

  it.each(["postgres:16.4-bookworm", "registry.example.com:5000/postgres:16.4", `postgres@sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`])(
    "accepts %s",
    (ref) => {
      expect(() => postgres(ref)).toThrow(GuardPassed);
    },
  );
});

describe("the images the program builds refuse a floating tag (ResourceError)", () => {
  const services = (tag: string) => new ServicesImage("services-image", { runtime, repository: `${LOCAL_REPOSITORY}/services`, tag, nodeImage: upstreamImages.node.ref });
  const trainer = (tag: string) =>
    new TrainerImage("trainer-image", { runtime, repository: `${LOCAL_REPOSITORY}/trainer`, tag, servicesImage: { ref: pulumi.output(`${LOCAL_REPOSITORY}/services:0.1.0`), contentId: pulumi.output("sha256:0") } });

  it.each(["latest", "stable", "main", "Nightly"])("%s", (tag) => {
    for (const [image, build] of [["services", services], ["trainer", trainer]] as const) {
      expect(() => build(tag)).toThrow(pulumi.ResourceError);
      expect(() => build(tag)).toThrow(`${image} image tag '${tag}' must be pinned: a version such as 0.1.0, not a floating tag (latest, stable,`);
    }
  });

  it("refuses a tag Docker would refuse (over 128 characters), as the stack config does", () => {
    expect(() => services("1".repeat(129))).toThrow(pulumi.ResourceError);
    expect(() => services("1".repeat(128))).toThrow(GuardPassed);
  });

  it("accepts a version tag", () => {
    expect(() => services("0.1.0")).toThrow(GuardPassed);
    expect(() => trainer("0.1.0")).toThrow(GuardPassed);
  });
});
