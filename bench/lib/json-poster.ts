/**
 * The trading bench's HTTP client: POSTs a JSON body over keep-alive node:http connections and
 * parses the JSON answer. Not fetch: measured in bench/trading.ts at 200 orders/s, fetch cost the
 * load generator 1.5-2 ms of CPU per order (its WHATWG streams and Headers objects), as much as the
 * gateway and order-management together, on the same two cores as the services it measures; a
 * late load generator also delays the sends it times.
 */
import { Agent, request } from "node:http";

export interface JsonAnswer {
  status: number;
  body: { status?: string; orderId?: string; rejectReason?: string; error?: { code?: string } };
}

export function jsonPoster(maxSockets: number) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  return {
    post(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<JsonAnswer> {
      return new Promise((resolve, reject) => {
        const req = request(url, { method: "POST", agent, headers: { ...headers, "content-length": Buffer.byteLength(body) }, timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
            } catch (err) {
              reject(err);
            }
          });
          res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
