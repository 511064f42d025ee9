import type { TSchema } from "@sinclair/typebox";

/**
 * The words that make a name a credential's, one list for every place that masks by name: the
 * config log's URL queries and variables (./config.ts), the exported spans' attributes
 * (./telemetry/scrub.ts) and the fields of log lines (./log-redaction.ts). Each use differs from the list in the ways written
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

/**
 * Credentials named by a short word, which other names hold inside them (`pin` in `shipping`,
 * `mapping`, `pinned`; `cvc` in nothing yet): matched only as a whole word of the name, its
 * camelCase, snake_case, kebab-case or dotted parts, a number after it allowed (`pin`, `adminPin`,
 * `PIN_CODE`, `card.cvv`, `pin2`). A PIN, a passcode or a card's security code.
 */
const WORD_CREDENTIAL = /^(?:pin|passcode|cvv|cvc)\d*$/;
const MAY_HOLD_WORD_CREDENTIAL = /pin|passcode|cvv|cvc/i;

/** Whether a word of `name` (camelCase, snake_case, kebab-case or dotted parts) is a PIN, passcode or card code (WORD_CREDENTIAL). */
export function hasCredentialWord(name: string): boolean {
  if (!MAY_HOLD_WORD_CREDENTIAL.test(name)) return false;
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1 $2")
    .split(/[^A-Za-z0-9]+/);
  return words.some((w) => WORD_CREDENTIAL.test(w.toLowerCase()));
}

/** Whether a log field named `name` holds a credential (CREDENTIAL_FIELD, or a PIN-like word: hasCredentialWord). */
export function isCredentialField(name: string): boolean {
  return (CREDENTIAL_FIELD.test(name) || hasCredentialWord(name)) && !RECORD_OF_A_CREDENTIAL.test(name);
}

/** A PIN or a passcode, as a word of the name (`ADMIN_PIN`, `PIN_CODE`; not `PINNED_`, `SHIPPING_`). */
const PIN_WORD = "(?:^|_)(?:PIN|PASSCODE)(?=_|$)";

/**
 * A number named like a credential that measures it rather than holds it: a unit or a measure comes
 * after the credential word (`REFRESH_TOKEN_TTL_S`, `KAFKA_SESSION_TIMEOUT_MS`, `PASSWORD_MIN_LENGTH`,
 * `API_KEY_MAX_FAILURES`, `API_KEY_MAX_ACTIVE_PER_USER`). One whose name ends in the credential, or
 * goes on with other words (`ADMIN_PIN`, `RELAY_PASSWORD` declared a number, `SMTP_PASSWORD_2`,
 * `PIN_CODE`), may be the credential itself.
 */
const MEASURE_OF_A_CREDENTIAL = new RegExp(
  `(?:${CREDENTIAL_FIELD.source}|${PIN_WORD})[A-Z0-9_]*?_(?:MAX|MIN|PER|TTL|AGE|MS|S|SECS?|SECONDS|MINUTES|HOURS|DAYS|WEEKS|TIMEOUT|` +
    "INTERVAL|RETENTION|WINDOW|PERIOD|DELAY|GRACE|LENGTH|LEN|CHARS|BYTES|KB|KIB|MB|MIB|SIZE|COUNT|LIMIT|ROUNDS|ITERATIONS|COST|" +
    "ATTEMPTS|RETRIES|FAILURES|PORT|CAPACITY|PERCENT|PCT)(?:_|$)",
  "i",
);
const PIN = new RegExp(PIN_WORD, "i");

/**
 * Config variables (./config.ts, the second net behind the schema's `secret` mark): whether one
 * named like a credential (isCredentialField, the log fields' rule, or a PIN) may hold one by its
 * schema. Text may (unless it is one literal); a number may unless its name names a unit or a
 * measure of it (a TTL, a length, a limit is not a secret; a PIN is: MEASURE_OF_A_CREDENTIAL); a
 * list or a union may when an item or a member may. A switch or a literal may not: its values are
 * written in the schema, public. Session 42's net looked at text and lists only: a number that is a
 * PIN, or a union with a text member, was printed.
 */
export function namedLikeACredential(name: string, s: TSchema | undefined): boolean {
  return (isCredentialField(name) || PIN.test(name)) && mayHoldCredential(name, s);
}

function mayHoldCredential(name: string, s: TSchema | undefined): boolean {
  if (!s) return false;
  const members = [...((s.anyOf as TSchema[] | undefined) ?? []), ...((s.allOf as TSchema[] | undefined) ?? [])];
  if (members.length > 0) return members.some((m) => mayHoldCredential(name, m));
  switch (s.type) {
    case "string":
      return s.const === undefined;
    case "integer":
    case "number":
      return s.const === undefined && !MEASURE_OF_A_CREDENTIAL.test(name);
    case "boolean":
    case "null":
      return false;
    case "array":
      return s.items === undefined || mayHoldCredential(name, s.items as TSchema);
    default:
      return true;
  }
}
