/**
 * Headers on every answer of the gateway, the platform's public entry on both targets.
 *
 * On Docker the edge's Nginx sets the same (components/edge/nginx.ts, hiding these from the gateway
 * so each is sent once). On Kubernetes an ingress controller adds none of them by itself but HSTS
 * (ingress-nginx's default), and the one way to add them per Ingress, a snippet annotation, is
 * refused by default since ingress-nginx 1.9 (policy ingress-no-snippets): so the gateway sends them.
 * An upstream's own copies are not passed on (./upstreams.ts answerHeaders): these are the platform's.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // Browsers take it only over HTTPS, which is all the edges serve; two years, as Nginx sends it.
  "strict-transport-security": "max-age=63072000",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};
