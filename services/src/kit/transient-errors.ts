/**
 * One answer to "did a datastore or the network fail, so that the same operation may succeed later,
 * or is the operation itself at fault?". The HTTP error handler (./errors.ts) answers a transient
 * error with 503 DATASTORE_UNAVAILABLE and Retry-After instead of 500; the Kafka consumers
 * (trading/infra/kafka.ts) retry the batch instead of setting the message aside as poison.
 *
 * An error is judged by its own code wherever it carries one (SQLSTATE, ClickHouse error code, the
 * kafkajs class and `retriable` flag, the Redis error prefix): a server's message can quote client
 * input (an invalid uuid, a fragment of a query), so message text is read only for the client
 * libraries' own connection errors, which carry no code, and only from its first word. An error
 * that names a 4xx status (HttpError, a validation error) is the client's, never transient.
 */

/** The code of a connection refused: nothing listens (a peer restarting, or down), nothing was sent (the gateway sends a request again on it). */
export const REFUSED_CONNECTION_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED"]);
/** Codes of a connection closed or reset under a request (undici's UND_ERR_SOCKET: the other side closed it). */
export const LOST_CONNECTION_CODES: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

/** Node.js error codes of a connection that could not be made or was lost. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  ...REFUSED_CONNECTION_CODES,
  ...LOST_CONNECTION_CODES,
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;
/**
 * SQLSTATE classes of a datastore or transaction problem, not of the data: 08 connection, 40 rollback
 * (serialization failure, deadlock), 53 insufficient resources (too many connections, out of memory,
 * disk full), 57 operator intervention (shutdown, starting up, statement timeout), 58 system error,
 * XX internal error; and 55P03, a lock not available within lock_timeout.
 */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58|XX)|^55P03$/;

/** ClickHouse error codes of load or connectivity, not of the query: 159 TIMEOUT_EXCEEDED,
 * 202 TOO_MANY_SIMULTANEOUS_QUERIES, 209 SOCKET_TIMEOUT, 210 NETWORK_ERROR, 241 MEMORY_LIMIT_EXCEEDED,
 * 242 TABLE_IS_READ_ONLY, 252 TOO_MANY_PARTS, 279 ALL_CONNECTION_TRIES_FAILED. */
const TRANSIENT_CLICKHOUSE_CODES: ReadonlySet<number> = new Set([159, 202, 209, 210, 241, 242, 252, 279]);
/** The code at the head of a ClickHouse server message ("Code: 202. DB::Exception" on current
 * servers, "Code: 202, e.displayText() = ..." on 18.16, whose messages the client does not parse). */
const CLICKHOUSE_MESSAGE_CODE = /^Code: (\d{1,4})[.,]/;

/** kafkajs errors that mean the cluster is unreachable, still electing or overloaded, beyond those
 * flagged `retriable` (NumberOfRetriesExceeded is non-retriable for kafkajs: its own retries ran out). */
const TRANSIENT_KAFKA_ERRORS: ReadonlySet<string> = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSBrokerNotFound",
  "KafkaJSGroupCoordinatorNotFound",
  "KafkaJSTimeout",
  "KafkaJSLockTimeout",
]);

/** Redis replies of a server loading, failing over or busy ("-LOADING Redis is loading ..."). */
const TRANSIENT_REDIS_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b/;
/** ioredis errors of a connection given up on. */
const TRANSIENT_REDIS_ERRORS: ReadonlySet<string> = new Set(["MaxRetriesPerRequestError", "ClusterAllFailedError"]);

/** The opening words of the drivers' own connection errors (pg, pg-pool, ioredis, @clickhouse/client, Node's http). */
const CONNECTION_MESSAGES = new RegExp(
  "^(" +
    [
      "timeout exceeded when trying to connect", // pg-pool: no connection within connectionTimeoutMillis
      "Connection terminated", // pg: the server or the network ended the connection
      "Client has encountered a connection error", // pg
      "Client was closed and is not queryable", // pg
      "Cannot use a pool after calling end on the pool", // pg-pool during shutdown
      "timeout expired$", // pg Client: no connection within connectionTimeoutMillis
      "Query read timeout", // pg query_timeout
      "the database system is (starting up|shutting down)", // PostgreSQL before the SQLSTATE is known
      "Connection is closed\\.", // ioredis
      "Stream isn't writeable", // ioredis with the offline queue off
      "Socket timeout\\.", // ioredis socketTimeout
      "connect ETIMEDOUT", // ioredis connectTimeout
      "socket hang up", // Node http: a kept-alive socket closed by the server (ClickHouse, Weaviate)
      "Timeout error\\.", // @clickhouse/client request_timeout
    ].join("|") +
    ")",
);

interface ErrorFields {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  statusCode?: unknown;
  retriable?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/**
 * True when `err` says a datastore or the network failed (retry later); false when the operation or
 * its input is at fault (bad SQL input, a constraint, validation, a bug) or `err` is not an error.
 * Wrapped causes (`cause`, AggregateError's `errors`) are followed when the error itself says nothing.
 */
export function isTransientError(err: unknown): boolean {
  return judge(err, 0);
}

function judge(err: unknown, depth: number): boolean {
  if (!err || typeof err !== "object" || depth > 4) return false;
  const e = err as ErrorFields;
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) return false;
  const name = typeof e.name === "string" ? e.name : "";
  const message = typeof e.message === "string" ? e.message : "";
  // kafkajs protocol errors carry Kafka's numeric code: the class and flag decide before any code.
  if (name.startsWith("KafkaJS")) return e.retriable === true || TRANSIENT_KAFKA_ERRORS.has(name);
  if (name === "ReplyError") return TRANSIENT_REDIS_REPLY.test(message);
  if (TRANSIENT_REDIS_ERRORS.has(name)) return true;

  const code = typeof e.code === "string" ? e.code : "";
  if (NETWORK_ERROR_CODES.has(code)) return true;
  if (SQLSTATE.test(code)) return TRANSIENT_SQLSTATE.test(code); // pg DatabaseError
  if (/^\d{1,4}$/.test(code)) return TRANSIENT_CLICKHOUSE_CODES.has(Number(code)); // ClickHouseError
  const chCode = CLICKHOUSE_MESSAGE_CODE.exec(message);
  if (chCode) return TRANSIENT_CLICKHOUSE_CODES.has(Number(chCode[1]));
  if (!code && CONNECTION_MESSAGES.test(message)) return true;

  if (Array.isArray(e.errors) && e.errors.some((x) => judge(x, depth + 1))) return true;
  return judge(e.cause, depth + 1);
}
