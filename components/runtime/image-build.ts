/**
 * Builds an image from a Dockerfile with the Docker provider; shared by both runtimes (Docker keeps
 * it on the local engine, Kubernetes pushes it to the stack's registry and runs it by digest).
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ImageBuildSpec } from "../workload";

export function buildImage(name: string, spec: ImageBuildSpec, push: boolean, parent: pulumi.Resource): docker.Image {
  return new docker.Image(
    name,
    {
      imageName: `${spec.repository}:${spec.tag}`,
      build: { context: spec.context, dockerfile: spec.dockerfile, args: spec.buildArgs, platform: "linux/amd64" },
      skipPush: !push,
      registry: spec.registryAuth
        ? { server: spec.repository.split("/")[0], username: spec.registryAuth.username, password: spec.registryAuth.password }
        : undefined,
    },
    { parent },
  );
}
