/**
 * The client address Fastify gives `request.ip` (its trustProxy: the peer, or the nearest untrusted
 * X-Forwarded-For entry when the peer is listed in TRUST_PROXY), for a request served outside
 * Fastify (the gateway's fast lane): the same library (@fastify/proxy-addr) on the same list, so a
 * client counts in the same rate-limit bucket whichever way its request goes.
 */
import type { IncomingMessage } from "node:http";
import proxyAddr from "@fastify/proxy-addr";

/** `request.ip` of a server whose trustProxy is `trustProxy` (parseTrustProxy's list, or undefined: trust none). */
export function clientAddressOf(trustProxy: string[] | undefined): (req: IncomingMessage) => string {
  if (!trustProxy) return (req) => req.socket.remoteAddress ?? "";
  const trust = proxyAddr.compile(trustProxy);
  return (req) => {
    const addrs = proxyAddr.all(req, trust);
    return addrs[addrs.length - 1];
  };
}
