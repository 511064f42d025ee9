/**
 * The service catalog lives in the top-level `catalog/` module, shared with the Pulumi program, the
 * policy pack and the tests; the services see the runtime contract, the datastore list and the address
 * rules the stack configuration applies too (sizing
 * is the deployment's business). This file only re-exports it, so imports inside services/src stay
 * short. The services image is built from the repository root for this reason (services/Dockerfile).
 */
export * from "../../catalog/addresses";
export * from "../../catalog/datastores";
export * from "../../catalog/edge";
export * from "../../catalog/services";
export * from "../../catalog/service-settings";
