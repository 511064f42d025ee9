/**
 * Reading JSON events in a test consumer. Topics of the shared test broker carry every file's
 * messages, including deliberately malformed ones (order-path's poison): a test consumer that threw
 * on one would have kafkajs redeliver it forever and never see the event it waits for.
 */
// `any`: the event shapes are asserted by the tests that read them.
export function parseJson(value: Buffer | null): any | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value.toString());
  } catch {
    return undefined; // not JSON: another file's message, not ours
  }
}

/** Appends the message's JSON to `into`, skipping what is not JSON. */
export function pushJson(into: unknown[], value: Buffer | null): void {
  const v = parseJson(value);
  if (v !== undefined) into.push(v);
}
