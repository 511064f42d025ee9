/**
 * What a request the lane read, and then handed to node:http and Fastify (./connections.ts), takes
 * with it: its whole-request deadline, counted from when the lane read it, and the answer of the
 * credentials warm-up the lane ran for it (../authenticate.ts authenticate), and its request id (kit
 * app.ts carryRequestId: Fastify gives the request the id the lane gave it, so its warm-up's calls,
 * the lane's hand-over line and Fastify's access line name one id; before session 56 Fastify gave it
 * a new one). The Fastify path's
 * onRequest hook (../index.ts) takes both for the connection's first request: one REQUEST_TIMEOUT_MS
 * from the first byte, and no second authentication (before session 55 a warm-up that ended in an
 * error was asked again under a budget of its own: up to about twice the bound; and a user-state read
 * the gateway's close cut became the closing answer's "not started" instead of the cut call's 503).
 * A request read before the service's close began is served as one routed before it (kit
 * closing-answers.ts markBegunBeforeClose), as on the path without the lane.
 */
import type { Socket } from "node:net";
import { carryRequestId } from "../../../kit/app";
import { markBegunBeforeClose } from "../../../kit/closing-answers";
import type { Auth } from "../authenticate";

/** A request the lane handed over (its method and URL: it must be the connection's first on the Fastify path). */
export interface HandedOverRequest {
  method: string;
  url: string;
  /** Date.now() when its whole-request budget ends. */
  deadline: number;
  /** The credentials warm-up's answer, when one ran to its end. */
  auth?: Auth;
  /** Read before the service's close began. */
  beforeClose: boolean;
  /** The id the lane gave it, when it gave one (Fastify's request id for it). */
  requestId?: string;
}

const handedOver = new WeakMap<Socket, HandedOverRequest>();

/** Called as the lane hands `socket` over with `req`'s bytes in front. */
export function carryOver(socket: Socket, req: HandedOverRequest): void {
  handedOver.set(socket, req);
  if (req.requestId !== undefined) carryRequestId(socket, req.method, req.url, req.requestId);
  if (req.beforeClose) markBegunBeforeClose(socket);
}

/** What the lane handed over with the connection of `method` `url`, when it is that request (taken: asked once). */
export function takeHandedOver(socket: Socket, method: string, url: string): HandedOverRequest | undefined {
  const req = handedOver.get(socket);
  if (!req) return undefined;
  handedOver.delete(socket);
  return req.method === method && req.url === url ? req : undefined;
}
