/**
 * Drain answers: the 503s a service gives while it shuts down (./closing-answers.ts, a route's cut
 * wait thrown as errors.ts shuttingDown, /ready while draining, the gateway forwarding one). They are
 * counted as the 5xx they are, but their access line (./probes.ts) is written at the level given here,
 * with a `reason`, not as an error. A module of its own so ./errors.ts can mark without an import cycle.
 */
import type { FastifyReply } from "fastify";

const drainAnswers = new WeakMap<FastifyReply, { reason: string; level: "warn" | "info" }>();

/** Marks `reply` as a drain answer: its access line is written at `level` (not error) with `reason`. */
export function markDrainAnswer(reply: FastifyReply, reason: string, level: "warn" | "info" = "warn"): void {
  drainAnswers.set(reply, { reason, level });
}

/** How a drain answer is logged (undefined: any other answer). */
export const drainAnswerOf = (reply: FastifyReply) => drainAnswers.get(reply);
