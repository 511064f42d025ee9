export * from "./config";
export * from "./errors";
export * from "./identity";
export * from "./peers";
export * from "./service";
export { Datastores, DatastoreDisabledError, datastoreEnv, loadDatastoreConfig } from "./datastores";
export type {
  DatastoreConfig,
  DatastoreState,
  PostgresClient,
  DragonflyClient,
  ClickHouseKitClient,
  KafkaKitClient,
  ArangoKitClient,
  WeaviateKitClient,
} from "./datastores";
export { Type, type Static, type TSchema } from "@sinclair/typebox";
export * from "./jwt";
export { bindParams, formatValue, quoteString, ClickHouseParamError } from "./clickhouse-params";
