/**
 * Validates Kubernetes objects against the OpenAPI schemas of the Kubernetes API, offline, with
 * the JSON-schema validators that `kubernetes-models` ships (generated from the upstream OpenAPI
 * spec). Used on the mocked program's inputs and on manifests rendered by the provider.
 */
export interface SchemaProblem {
  kind: string;
  name: string;
  message: string;
}

function modulePath(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

export async function validateManifest(obj: { apiVersion?: string; kind?: string; metadata?: { name?: string } }): Promise<SchemaProblem[]> {
  const kind = obj.kind ?? "?";
  const name = obj.metadata?.name ?? "?";
  if (!obj.apiVersion || !obj.kind) return [{ kind, name, message: "apiVersion and kind are required" }];
  let Model: new (data: unknown) => { validate(): void };
  try {
    const mod = await import(modulePath(obj.apiVersion, obj.kind));
    Model = mod[obj.kind];
  } catch {
    return [{ kind, name, message: `unknown API ${obj.apiVersion} ${obj.kind}` }];
  }
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [{ kind, name, message: (err as Error).message }];
  }
}
