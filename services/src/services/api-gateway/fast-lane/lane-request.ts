/**
 * What the fast lane's connections (./connections.ts) offer the lane (./serve.ts): a complete request,
 * and what deciding it answers.
 */
import type { IncomingMessage } from "node:http";
import type { Auth } from "../authenticate";
import type { LaneConnection } from "./connections";

/** A complete request the lane may serve: its IncomingMessage-shaped view (headers as node:http joins them). */
export interface LaneRequest {
  /** rawHeaders, headers, method, url, httpVersion*, socket: what the kit's checks read (framingIssue, clientRequestIdOf, the client address). */
  msg: IncomingMessage;
  method: string;
  url: string;
  /** The client keeps the connection open after the answer (llhttp's shouldKeepAlive: no Connection: close). */
  keepAlive: boolean;
  /** performance.now() when the request was read. */
  startedAt: number;
  /** Its id (the app's genReqId), once the lane gave it one. */
  requestId?: string;
  /** Date.now() when its whole-request budget ends, and whether it was read before the close began (./serve.ts sets both). */
  deadline?: number;
  beforeClose?: boolean;
  /** The credentials warm-up's answer (./serve.ts), handed over with it (./handed-over.ts). */
  auth?: Auth;
}

/** A request declined only because a cache is cold (./serve.ts Cold): `warm` fills it; true when deciding again is worth it. */
export interface ColdRequest {
  reason: string;
  warm: () => Promise<boolean>;
}

/**
 * What serves a request (./serve.ts): true when it took it (and will call `conn.finish`), a cold
 * cache to warm before deciding again, else why the connection is handed over.
 */
export type LaneServer = (req: LaneRequest, conn: LaneConnection) => true | string | ColdRequest;
