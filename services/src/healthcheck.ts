/**
 * Container HEALTHCHECK: GET http://127.0.0.1:$PORT/health (PORT defaults to the catalog port of
 * SERVICE_NAME, like the service itself). Exit 0 when healthy, 1 otherwise.
 */
import { findService } from "./catalog";

const def = process.env.SERVICE_NAME ? findService(process.env.SERVICE_NAME) : undefined;
const port = process.env.PORT || (def ? String(def.port) : "3000");
fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4_000) }).then(
  (r) => process.exit(r.ok ? 0 : 1),
  () => process.exit(1),
);
