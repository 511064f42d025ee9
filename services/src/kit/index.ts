export * from "./config";
export * from "./errors";
export { isTransientError, LOST_CONNECTION_CODES, NETWORK_ERROR_CODES, REFUSED_CONNECTION_CODES } from "./transient-errors";
export * from "./identity";
export { addressBucketOf, siteBucketOf } from "./address-bucket";
export * from "./peers";
export * from "./service";
export { Datastores, DatastoreDisabledError, datastoreEnv, loadDatastoreConfig, subscribeDragonfly } from "./datastores";
export type { DragonflySubscriber, DragonflySubscriberOptions } from "./datastores";
export type { App } from "./app";
export type { ReadinessCheck, ServiceMetrics } from "./probes";
export { INTERNAL_PATH_PREFIXES, isInternalPath } from "./probes";
export { isClosingAnswer, markDrainAnswer, SHUTTING_DOWN } from "./closing-answers";
export type {
  DatastoreConfig,
  DatastoreState,
  PostgresClient,
  Queryable,
  DragonflyClient,
  ClickHouseKitClient,
  KafkaKitClient,
  ArangoKitClient,
  WeaviateKitClient,
} from "./datastores";
export { Type, type Static, type TSchema } from "@sinclair/typebox";
export * from "./jwt";
export { clickhouseDateTime, ClickHouseParamError, isClosedSocket } from "./clickhouse/client";
export type { ParamBinding } from "./clickhouse/client";
export { dropMonthsEndedBefore, dropPartitionsEndedBefore, partitionsEndedBefore, unfinishedMutations, unfinishedMutationsOf, yyyymm } from "./clickhouse/retention";
export type { UnfinishedMutation } from "./clickhouse/retention";
export { decorateDatastores } from "./decorators";
export { isJsonObject } from "./json-values";
export { DisplayText, isDisplayText, PRINTABLE_TEXT_PATTERN, printableTextPattern, VISIBLE_TEXT_PATTERN } from "./display-text";
export { ACCOUNT_LOCKS, accountDeleted, accountKeyOf, accountWasDeleted, deletedAccountsOf, lockAccountForWrite, lockAccountsStatements } from "./accounts";
export { deleteOlderThan, deleteOlderThanDays, PeriodicDelete, RECORD_RETENTION_DAYS } from "./datastores/periodic-delete";
export { findUnstorableText, isUnstorableText, storableText } from "./request-guards";
export { idempotencyKeyOf, idempotencyKeyReused, requestHashOf } from "./idempotency";
export { pathOf } from "./request-path";
export { installAnswerHeaders } from "./raw-answers";
export { awaitsContinue } from "./request-framing";
export { cursorPage, pageOf, unknownCursor } from "./paging";
export { EARLIEST_INSTANT, LATEST_INSTANT, isPlatformInstant } from "./instants";
export { afterGrace, unlessAborted, withTimeout } from "./deadline";
export { scrapeRead } from "./scrape-read";
export { alreadyReplayed, DeadLetterIdParams, ReplayedAnswer } from "./dead-letter-replays";
export { SendDeadlineError, type DeadlineProducer } from "./datastores/kafka-deadline";
export { ErrorResponse, NoContent, Nullable, OPENAPI_DOCUMENT_PATH, OPENAPI_VERSION, ResponseObject } from "./openapi";
