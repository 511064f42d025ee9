/**
 * One list of credential words (services/src/kit/credential-words.ts) serves the config log's URL
 * queries, the spans' attribute names and the log lines' fields. Until session 42 the first two were
 * two near-twin lists (kit/config.ts CREDENTIAL_PARAM, kit/telemetry/scrub.ts SECRET_KEY): each
 * use masks exactly what its own list masked, and the differences are the ones written in the module.
 */
import { describe, expect, it } from "vitest";
import { CREDENTIAL_ATTRIBUTE, CREDENTIAL_QUERY_PARAM, isCredentialField } from "../../services/src/kit/credential-words";
import { scrubAttributes } from "../../services/src/kit/telemetry/scrub";

/** The two lists as session 41 left them. */
const SESSION_41_QUERY = /pass|pwd|secret|token|key|auth|credential|signature|session|cookie/i;
const SESSION_41_ATTRIBUTE = /(authorization|cookie|api[-_.]?key|password|passwd|secret|token|credential|signature|session|db\.statement\.param|db\.query\.parameter)/i;

const NAMES = [
  "password", "Passwd", "pwd", "pass", "passphrase", "bypass", "test.passed", "secret", "client_secret", "token", "access_token", "refreshToken",
  "credential", "credentials", "X-Amz-Signature", "sig", "session", "sessionId", "session.id", "cookie", "set-cookie", "authorization", "auth",
  "oauth_token", "www-authenticate", "apiKey", "api_key", "api.key", "x-api-key", "key", "sig_key", "db.redis.key", "messaging.kafka.message.key",
  "privateKey", "db.statement.param.0", "db.query.parameter.user", "region", "sslmode", "url.full", "http.route", "user_id", "apiKeyId",
];

describe("one list of credential words", () => {
  it("the URL query's and the span attributes' uses mask exactly what session 41's two lists masked", () => {
    for (const name of NAMES) {
      expect(CREDENTIAL_QUERY_PARAM.test(name), `query ${name}`).toBe(SESSION_41_QUERY.test(name));
      expect(CREDENTIAL_ATTRIBUTE.test(name), `attribute ${name}`).toBe(SESSION_41_ATTRIBUTE.test(name));
    }
  });

  it("each use's difference: a query's bare key/auth/pass is a credential, a span's db.redis.key is not; a log field naming a credential's record is kept", () => {
    for (const name of ["key", "auth", "pass", "pwd", "sig_key"]) expect([name, CREDENTIAL_QUERY_PARAM.test(name), CREDENTIAL_ATTRIBUTE.test(name)]).toEqual([name, true, false]);
    expect(scrubAttributes({ "db.redis.key": "orders:u1", "messaging.kafka.message.key": "u1", "http.request.header.x-api-key": "atk_x" })).toEqual({ "db.redis.key": "orders:u1", "messaging.kafka.message.key": "u1" });
    for (const name of ["password", "newPassword", "x-api-key", "set-cookie", "refresh_token", "privateKey", "pwd", "passphrase"]) expect([name, isCredentialField(name)]).toEqual([name, true]);
    for (const name of ["apiKeyId", "sessionId", "session_id", "tokenExpiresAt", "tokenCount", "key", "userId"]) expect([name, isCredentialField(name)]).toEqual([name, false]);
  });
});
