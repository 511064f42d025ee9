/**
 * A fetch answer's body read as it arrives and refused beyond a cap, for answers of servers the
 * platform calls out to (the market source, the Telegram Bot API): `res.json()` / `res.text()` read
 * an answer whole, however large, into the service's memory first.
 */
export class AnswerTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`answer over ${maxBytes} bytes`);
    this.name = "AnswerTooLargeError";
  }
}

/** The body as UTF-8 text; AnswerTooLargeError (the rest not read) beyond `maxBytes`. */
export async function readTextCapped(res: Response, maxBytes: number): Promise<string> {
  if (Number(res.headers.get("content-length") ?? 0) > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new AnswerTooLargeError(maxBytes);
  }
  const reader = res.body?.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const next = reader ? await reader.read() : { done: true as const };
    if (next.done) return Buffer.concat(chunks).toString("utf8");
    bytes += next.value.length;
    if (bytes > maxBytes) {
      await reader?.cancel().catch(() => undefined);
      throw new AnswerTooLargeError(maxBytes);
    }
    chunks.push(next.value);
  }
}
