/**
 * The words that make a name a credential's, one list for every place that masks by name: the
 * config log's URL queries (./config.ts), the exported spans' attributes (./telemetry/scrub.ts) and
 * the fields of log lines (./log-redaction.ts). Each use differs from the list in the ways written
 * next to it, for the reason given there; a word added here is masked by all three.
 */

/** Credential words, as regular expression sources, matched in any case. */
export const CREDENTIAL_WORDS: readonly string[] = [
  "password",
  "passwd",
  "secret",
  "token",
  "credential",
  "signature",
  "session",
  "cookie",
  "authorization",
  "api[-_.]?key",
];

const anyOf = (words: readonly string[]): string => `(?:${words.join("|")})`;

/**
 * URL query parameters (config log and the error of a refused value): a credential word anywhere in
 * the name, and besides the bare `pass`, `pwd`, `key` and `auth` (also inside a name: `passphrase`,
 * `sig_key`, `oauth_token`). A query's name is short and its value is what the server takes:
 * `?key=`, `?auth=`, `?pwd=` hold the login itself (Google's `?key=`, drivers' `?pwd=`).
 */
export const CREDENTIAL_QUERY_PARAM = new RegExp(anyOf([...CREDENTIAL_WORDS, "pass", "pwd", "key", "auth"]), "i");

/**
 * Span attribute names (dropped whatever the value): a credential word anywhere in the name, and
 * besides the recorded statement parameters (`db.statement.param.*`, `db.query.parameter.*`: the
 * values a query was run with). Not the bare `key`: `db.redis.key`, `messaging.kafka.message.key`
 * name a key (a Redis key, a partition key), not a secret; nor `auth` (`www-authenticate` is a
 * challenge) or `pass` (`test.passed`).
 */
export const CREDENTIAL_ATTRIBUTE = new RegExp(anyOf([...CREDENTIAL_WORDS, "db\\.statement\\.param", "db\\.query\\.parameter"]), "i");

/**
 * Fields of a log line (censored at any depth): a credential word anywhere in the name, and besides
 * `pwd`, `passphrase` and a private key (`privateKey`, `private_key`), unless the name
 * ends in `Id`, `Ids`, `At` or `Count` (`apiKeyId`, `sessionId`, `tokenExpiresAt`): those name a
 * credential's record, not the credential, and audit lines log them. Not the bare `key` (`key` is a
 * Redis or Kafka key), as for spans.
 */
export const CREDENTIAL_FIELD = new RegExp(anyOf([...CREDENTIAL_WORDS, "pwd", "passphrase", "private[-_.]?key"]), "i");
const RECORD_OF_A_CREDENTIAL = /(?:[a-z0-9]Ids?|[-_.]ids?|[a-z0-9]At|[-_.]at|Count|[-_.]count)$/;

/** Whether a log field named `name` holds a credential (CREDENTIAL_FIELD). */
export function isCredentialField(name: string): boolean {
  return CREDENTIAL_FIELD.test(name) && !RECORD_OF_A_CREDENTIAL.test(name);
}
