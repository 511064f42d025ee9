/**
 * kafkajs 2.2.4 (the last release) re-arms a timer every millisecond on every broker connection,
 * forever, while nothing is waiting to be sent: `RequestQueue.scheduleCheckPendingRequests`
 * computes its delay as `throttledUntil - Date.now()` with `throttledUntil` at -1, and only
 * replaces a non-positive delay when requests are pending, so `setTimeout` gets a negative delay
 * (1 ms), whose callback schedules the next one (tulios/kafkajs#1556 and #1704; the fixes, #1667
 * and #1768, were never merged). Each service holds several connections (producer, consumer group,
 * coordinator), so each ran thousands of useless timers a second, idle or not: an idle
 * order-management took 29 ms of CPU a second on its main thread (README, "The order path").
 *
 * With nothing pending there is nothing to check. kafkajs itself checks the queue when it is
 * needed: `push` schedules a check when it queues a request it cannot send at once, and a
 * response or a request timeout checks the queue on the spot (`fulfillRequest`, `timeout`). So
 * the patched method returns when the queue is empty and otherwise does what it did. It is
 * applied once per kafkajs module (the kit's, and the test harness', which is the same file).
 *
 * tests/services/kafkajs-idle-loop.test.ts: an idle client's checks per second on a real broker,
 * and a producer limited to one request in flight (so requests do queue) delivers everything.
 */
const PATCHED = Symbol.for("trading.kafkajs.idleLoopPatched");

interface RequestQueueLike {
  pending: unknown[];
  scheduleCheckPendingRequests(): void;
}

/** Stops the idle 1 ms timer loop of kafkajs' request queues (see above); idempotent. */
export function patchKafkaJsIdleLoop(requireFrom: NodeJS.Require = require): void {
  const RequestQueue = requireFrom("kafkajs/src/network/requestQueue") as { prototype: RequestQueueLike & { [PATCHED]?: true } };
  const proto = RequestQueue.prototype;
  if (proto[PATCHED]) return;
  const original = proto.scheduleCheckPendingRequests;
  if (typeof original !== "function") throw new Error("kafkajs: RequestQueue.scheduleCheckPendingRequests not found; review kafkajs-idle-loop.ts for this kafkajs version");
  proto.scheduleCheckPendingRequests = function (this: RequestQueueLike) {
    if (this.pending.length === 0) return;
    original.call(this);
  };
  proto[PATCHED] = true;
}
