/**
 * What the api-gateway keeps for itself at the platform's edge, shared by the services (which enforce it)
 * and the policy pack (which refuses an ingress controller or Traefik middleware that undoes it, policy
 * edge-gateway-contract): the identity headers the services trust, the security headers on every answer,
 * and the paths no client reaches.
 */

/**
 * The identity the api-gateway verified, as trusted headers. The gateway strips these headers from
 * client requests and sets them itself; services behind it read them (kit `identityOf`).
 */
export const IDENTITY_HEADERS = {
  userId: "x-user-id",
  role: "x-user-role",
  /** how the caller signed in: one of services/src/kit/identity.ts AUTH_METHODS (jwt, api-key, service), required with a user id */
  authMethod: "x-auth-method",
  apiKeyId: "x-api-key-id",
  /** an API key's scopes, comma-separated (absent for a session) */
  apiKeyScopes: "x-api-key-scopes",
} as const;

/**
 * Headers on every answer of the gateway, the platform's public entry on both targets.
 *
 * On Docker the edge's Nginx sets the same (components/edge/nginx.ts, hiding these from the gateway
 * so each is sent once). On Kubernetes an ingress controller adds none of them by itself but HSTS
 * (ingress-nginx's default), and the one way to add them per Ingress, a snippet annotation, is
 * refused by default since ingress-nginx 1.9 (policy ingress-no-snippets): so the gateway sends them.
 * An upstream's own copies are not passed on (api-gateway/upstreams.ts answerHeaders): these are the platform's.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // Browsers take it only over HTTPS, which is all the edges serve; two years, as Nginx sends it.
  "strict-transport-security": "max-age=63072000",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/**
 * Paths every service answers for the platform, not for clients: probes, metrics and
 * service-to-service routes. The gateway never proxies them (whatever their case or encoding).
 */
export const INTERNAL_PATH_PREFIXES = ["/internal", "/metrics", "/ready", "/health"] as const;

/** True when a decoded service path's first segment is (or, for /internal, starts with) one of INTERNAL_PATH_PREFIXES. */
export function isInternalPath(path: string): boolean {
  const first = path.toLowerCase().split("/")[1] ?? "";
  return first.startsWith("internal") || INTERNAL_PATH_PREFIXES.some((p) => first === p.slice(1));
}

/** Is the IngressClass ingress-nginx's (`nginx`, or a distribution's such as `rke2-ingress-nginx`)? Only that controller reads its annotations and ConfigMap keys. */
export const isIngressNginxClass = (className: string): boolean => /(^|-)nginx$/.test(className);

/** Is the IngressClass Traefik's (`traefik`, or a distribution's such as `rke2-traefik`)? */
export const isTraefikClass = (className: string): boolean => /(^|-)traefik$/.test(className);
