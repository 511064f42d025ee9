/**
 * Predicates over parsed JSON (a request body, a Kafka message, an OTLP export), where `typeof`
 * alone says "object" for null and arrays too.
 */

/** A JSON object: not null, not an array. */
export const isJsonObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
