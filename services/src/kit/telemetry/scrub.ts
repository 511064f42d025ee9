/**
 * What leaves a process in a span must not carry a credential. The instrumentations are already
 * configured not to record headers, SQL parameters or Redis arguments (./index.ts); this is the
 * second line: every exported span passes through `scrubSpan`, which drops credential-bearing
 * attributes by name and masks credential-shaped text in every string (attributes, event
 * attributes such as exception messages and stacks, span names, status messages).
 */
import type { Attributes, AttributeValue, Link } from "@opentelemetry/api";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { ExportResult } from "@opentelemetry/core";
import { CREDENTIAL_ATTRIBUTE, hasCredentialWord } from "../credential-words";

export const REDACTED = "[REDACTED]";

/**
 * Attribute names whose values are credentials whatever they look like (headers recorded by any
 * instrumentation, ...): ../credential-words.ts CREDENTIAL_ATTRIBUTE (the shared words, the recorded
 * statement parameters besides, and not the bare `key` of `db.redis.key`), or a PIN-like word of the
 * name (`app.user.pin`, not `shipping`: hasCredentialWord).
 */
const SECRET_KEY = { test: (key: string): boolean => CREDENTIAL_ATTRIBUTE.test(key) || hasCredentialWord(key) };

/** URL query parameters whose values are replaced (names kept so the route stays readable). */
const QUERY_PARAM = /([?&][^=&#\s]+)=([^&#\s"']*)/g;
const PATTERNS: Array<[RegExp, string]> = [
  // userinfo in URLs: scheme://user:password@host, the user possibly empty (`redis://:password@host`,
  // the platform's own DRAGONFLY_URL), up to the last `@` of the URL: a password written with a raw
  // `/` or `@` (URL parsers take the last `@`) was cut at it and its rest printed. May mask a path
  // holding an `@` after a port (`http://h:80/u/a@b`): more than needed, never less.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:"'<>]*:[^\s"'<>]*@/gi, `$1${REDACTED}@`],
  // Authorization header values in messages; the scheme in any case (RFC 9110 §11.1: `bearer x` is
  // a credential too), but not the word "basic" in lower case, which prose holds.
  [/\b([Bb][Ee][Aa][Rr][Ee][Rr]|Basic|BASIC)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  // JWTs (three base64url segments, header starting {"  -> eyJ)
  [/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, REDACTED],
  // platform API keys, card processor secret and webhook keys
  [/\batk_[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\b(sk|rk|pk)_(test|live)_[A-Za-z0-9]{8,}/g, REDACTED],
  [/\bwhsec_[A-Za-z0-9_-]{8,}/g, REDACTED], // our webhook secrets are base64url
  // Telegram bot tokens (<bot id>:<35 characters>), which the Bot API takes in the URL's path
  // (`/bot<token>/sendMessage`, an HTTP client span's url.full): the bot id is kept, the secret half masked.
  [/\b(bot)?([0-9]{5,20}):[A-Za-z0-9_-]{30,100}/g, `$1$2:${REDACTED}`],
  // key=value / key: value pairs naming a secret
  [/\b(password|passwd|pwd|secret|token|api[-_]?key|access[-_]?token|refresh[-_]?token)(["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi, `$1$2${REDACTED}`],
];
/** SQL string literals (statements are recorded with placeholders; literals may still hold values). */
const SQL_LITERAL = /'(?:[^']|'')*'/g;

export function scrubString(s: string): string {
  let out = s;
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}

/** A URL or path: every query value masked, then the general patterns. */
export function scrubUrl(s: string): string {
  return scrubString(s.replace(QUERY_PARAM, `$1=${REDACTED}`));
}

const URL_KEYS = new Set(["url.full", "http.url", "http.target", "url.query", "url.path", "http.route"]);
const SQL_KEYS = new Set(["db.statement", "db.query.text"]);

function scrubValue(key: string, v: AttributeValue | undefined): AttributeValue | undefined {
  if (v === undefined || v === null) return v;
  if (SECRET_KEY.test(key)) return REDACTED;
  if (typeof v === "string") {
    if (URL_KEYS.has(key)) return scrubUrl(v);
    if (SQL_KEYS.has(key)) return scrubString(v.replace(SQL_LITERAL, "'?'"));
    return scrubString(v);
  }
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? scrubString(x) : x)) as AttributeValue;
  return v;
}

export function scrubAttributes(attrs: Attributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attrs)) {
    // Recorded request/response headers: only non-credential ones survive (by name).
    if (/^http\.(request|response)\.header\./.test(k) && SECRET_KEY.test(k)) continue;
    out[k] = scrubValue(k, v);
  }
  return out;
}

/** A copy of the span with every credential removed (ReadableSpan is an interface: no SDK internals copied). */
export function scrubSpan(span: ReadableSpan): ReadableSpan {
  const attributes = scrubAttributes(span.attributes);
  const events = span.events.map((e) => ({ ...e, name: scrubString(e.name), attributes: e.attributes ? scrubAttributes(e.attributes) : e.attributes }));
  const links: Link[] = span.links.map((l) => ({ ...l, attributes: l.attributes ? scrubAttributes(l.attributes) : l.attributes }));
  const status = span.status.message ? { ...span.status, message: scrubString(span.status.message) } : span.status;
  return {
    name: scrubUrl(span.name),
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status,
    attributes,
    links,
    events,
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Scrubs every span before the wrapped exporter sees it; reports failures to `onFailure` (never throws). */
export class ScrubbingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly onFailure: (error: Error | undefined) => void = () => undefined,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let scrubbed: ReadableSpan[];
    try {
      scrubbed = spans.map(scrubSpan);
    } catch (err) {
      this.onFailure(err as Error);
      done({ code: 1, error: err as Error });
      return;
    }
    this.inner.export(scrubbed, (result) => {
      if (result.code !== 0) this.onFailure(result.error);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
