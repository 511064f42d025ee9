/**
 * The catalog module: what the platform is made of, shared by the Pulumi program (components/,
 * stacks/), the services (services/src), the policy pack (policies/) and the tests. No npm
 * dependencies and no imports from outside this folder, so every package can compile it.
 */
export * from "./datastores";
export * from "./edge";
export * from "./labels";
export * from "./services";
export * from "./sizing";
