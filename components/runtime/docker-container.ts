/**
 * `docker:index/container:Container` with the inputs this repo's provider plugin implements beyond
 * `@pulumi/docker` 5.x (tools/providers/docker). The SDK's `docker.Container` copies only the inputs
 * it knows into the registration, so an extra input cannot pass through it; this class registers the
 * same type token with the args as given. The engine, the provider and the policy pack
 * (`args.isType(docker.Container)` compares type tokens) see an ordinary Docker container.
 *
 * The provider's Go test (tools/providers/docker, sdktest.Extension) checks that every input declared
 * here is in its schema with the same kind and is still missing from the SDK: when an SDK release
 * adds one, the test says to drop it here and use `docker.Container` again.
 */
import * as docker from "@pulumi/docker";
import { getVersion } from "@pulumi/docker/utilities";
import * as pulumi from "@pulumi/pulumi";

export interface ContainerArgs extends docker.ContainerArgs {
  /**
   * Most processes and threads the container may run at once (the engine's HostConfig.PidsLimit,
   * `docker run --pids-limit`), positive: a fork bomb or a thread leak stops at the container.
   */
  pidsLimit?: pulumi.Input<number>;
  /**
   * With attach: most seconds the one-shot run may last, positive. Past it the provider stops the
   * container (SIGTERM, SIGKILL destroyGraceSeconds later), removes it and fails the create, so a
   * stuck run cannot hold `pulumi up` and the stack's lock forever. Unset: no limit.
   */
  attachTimeout?: pulumi.Input<number>;
}

export class Container extends pulumi.CustomResource {
  /** With attach: the exit code of the one-shot run. */
  declare readonly exitCode: pulumi.Output<number | undefined>;
  /** With attach and logs: the container's output. */
  declare readonly containerLogs: pulumi.Output<string | undefined>;
  declare readonly networkDatas: pulumi.Output<docker.types.output.ContainerNetworkData[]>;

  constructor(name: string, args: ContainerArgs, opts?: pulumi.CustomResourceOptions) {
    // The outputs as undefined inputs, as the SDK's class registers them; the plugin version pinned
    // to the SDK's, as its resourceOptsDefaults() does.
    const props = { ...args, exitCode: undefined, containerLogs: undefined, networkDatas: undefined };
    super("docker:index/container:Container", name, props, pulumi.mergeOptions({ version: getVersion() }, opts));
  }
}
