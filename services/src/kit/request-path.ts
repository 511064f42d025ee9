/**
 * The path of a request's target, as logs and error messages write it: without the query and
 * without a fragment. Browsers never send a fragment, but any other client may
 * (`GET /orders#access_token=...`): Node keeps it in `request.url`, Fastify routes without it, and
 * the access line, cut at `?` only, wrote it whole.
 */
export function pathOf(url: string): string {
  const q = url.indexOf("?");
  const h = url.indexOf("#");
  const end = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return end < 0 ? url : url.slice(0, end);
}
