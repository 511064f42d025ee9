/** The gateway's texts for an upstream that did not answer as HTTP does: the Fastify path's (./proxy.ts) and the fast lane's alike, each service by its public route. */
import { publicServiceName } from "../../kit";

/** The text of the gateway's 502/504 for an upstream that did not answer, the Fastify path's and the fast lane's alike: the service by its public route. */
export const upstreamUnavailableText = (serviceName: string): string => `${publicServiceName(serviceName)} is unavailable`;

/** The text of the gateway's 502 for an upstream's answer that is not HTTP's (a status out of 200-599), both paths alike. */
export const upstreamInvalidText = (serviceName: string): string => `${publicServiceName(serviceName)} gave an invalid answer`;

/** The text of the gateway's 502 for an upstream taken for restarting (./upstreams.ts), the Fastify path's and the fast lane's alike. */
export const upstreamRestartingText = (serviceName: string): string => `${publicServiceName(serviceName)} is restarting; retry`;
