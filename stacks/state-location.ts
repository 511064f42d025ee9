/**
 * Where a stack's Pulumi state lives, as the Docker runtime labels its containers with it
 * (catalog/labels.ts LABEL_PULUMI_STATE) and `npm run up`'s check reads it back
 * (scripts/lib/host-ports.ts): two clones of the repo each keep their own state (.pulumi-state) and
 * deploy the dev stack under the same container names, so the name alone does not tell whose a
 * container is.
 *
 * From the backend URL (PULUMI_BACKEND_URL, which scripts/lib/pulumi-env.sh sets to
 * file://<clone>/.pulumi-state): a file backend as its directory, another backend as its URL without
 * credentials or query (a postgres:// backend's password must not land in a label); undefined
 * without one (a `pulumi login` of one's own, which the program cannot see).
 */
export function stateLocation(backendUrl: string | undefined): string | undefined {
  if (!backendUrl) return undefined;
  if (backendUrl.startsWith("file://")) return backendUrl.slice("file://".length).replace(/(.)\/+$/, "$1");
  try {
    const url = new URL(backendUrl);
    url.username = "";
    url.password = "";
    url.search = "";
    url.hash = "";
    return url.toString();
  } catch {
    return undefined;
  }
}

/** The clone a state location belongs to (<clone>/.pulumi-state, as the scripts make it), else undefined. */
export function cloneOf(location: string): string | undefined {
  const m = /^(\/.*)\/\.pulumi-state$/.exec(location);
  return m ? m[1] : undefined;
}
