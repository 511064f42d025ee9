/**
 * Session 51b, the follow-ups of red team round four: resources the pack passed that it should refuse, each
 * failing before its fix. (Case, what happened, the fix: policies/README.md "Red team, session 51", part 51b.)
 */
import { describe, expect, it } from "vitest";
import { deployment, edit, NS, prodStack } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

/** An ingress-nginx controller ConfigMap (recognised by its keys, whatever it is called), as in red-team-51. */
const controller = (data: Record<string, string>, name = "ingress-nginx-controller"): TestResource => ({
    type: "kubernetes:core/v1:ConfigMap", name,
    props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ingress-nginx" }, data },
});
const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);
const middleware = (spec: Record<string, any>, name = "mw"): TestResource => ({
    type: "kubernetes:traefik.io/v1alpha1:Middleware", name,
    props: { apiVersion: "traefik.io/v1alpha1", kind: "Middleware", metadata: { name, namespace: NS }, spec },
});
const traefik = (args: string[], env: Array<{ name: string; value: string }> = []) => edit(deployment("traefik", 8000), (p) => {
    p.spec.template.spec.containers[0].args = args;
    p.spec.template.spec.containers[0].env = [...(p.spec.template.spec.containers[0].env ?? []), ...env];
});
const CLIENT = "; the api-gateway's rate limits, failed-key counts and login lockout count the client address the edge forwards: an address the edge " +
    "writes puts every client behind it in one bucket, one a client writes lets it choose its own. Let the edge forward the address it sees, and trust " +
    "forwarded addresses from the edge proxy's own range only.";

describe("edge-gateway-contract: the client address the edge forwards (X-Forwarded-For, X-Real-IP, Forwarded)", () => {
    it("rejects a Traefik headers middleware or an ingress-nginx header map setting them, and a controller trusting any sender", async () => {
        const found = await messages("edge-gateway-contract", [
            middleware({ headers: { customRequestHeaders: { "X-Forwarded-For": "10.0.0.1", "x-real-ip": "10.0.0.1", "X-Request-Source": "edge" } } }),
            controller({ Forwarded: "for=10.0.0.1", "X-Request-Source": "edge" }, "custom-headers"),
            controller({ "Use-Forwarded-Headers": "T" }),
            controller({ "enable-real-ip": "true", "proxy-real-ip-cidr": "10.244.0.0/16, 0.0.0.0/0" }, "b"),
        ]);
        expect(found).toEqual([
            `Middleware "mw" sets the client-address headers X-Forwarded-For, x-real-ip on every request routed through it (headers.customRequestHeaders)${CLIENT}`,
            `ConfigMap "custom-headers" holds the client-address header Forwarded as a key: as ingress-nginx's proxy-set-headers (or auth-proxy-set-headers) map, the controller sets it on every request${CLIENT}`,
            `ConfigMap "ingress-nginx-controller" sets use-forwarded-headers with proxy-real-ip-cidr 0.0.0.0/0 (its default; wider than /16), so the controller takes the client address from a header any client there writes${CLIENT}`,
            `ConfigMap "b" sets enable-real-ip with proxy-real-ip-cidr 0.0.0.0/0 (wider than /16), so the controller takes the client address from a header any client there writes${CLIENT}`,
        ]);
        // Removing the header (Traefik then forwards the address it sees), a proxy range, and the platform's stack pass.
        expect(await messages("edge-gateway-contract", [...prodStack(), middleware({ headers: { customRequestHeaders: { "X-Forwarded-For": "" } } }),
            controller({ "use-forwarded-headers": "true", "proxy-real-ip-cidr": "10.244.0.0/16,fd00:10:244::/56" })])).toEqual([]);
    });

    it("rejects Traefik entry points trusting forwarded headers or the PROXY protocol from any client (flags any case, environment)", async () => {
        const found = await messages("edge-gateway-contract", [traefik(["--entryPoints.web.address=:8000", "--entryPoints.web.forwardedHeaders.insecure",
            "--entrypoints.websecure.proxyProtocol.trustedIPs=10.0.0.0/8,203.0.113.0/24"], [{ name: "TRAEFIK_ENTRYPOINTS_WEB_FORWARDEDHEADERS_TRUSTEDIPS", value: "0.0.0.0/0" }])]);
        expect(found).toEqual([
            `Deployment "traefik-deployment" container "traefik" sets --entrypoints.web.forwardedheaders.insecure, so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from any client${CLIENT}`,
            `Deployment "traefik-deployment" container "traefik" sets --entrypoints.websecure.proxyprotocol.trustedips to 10.0.0.0/8, 203.0.113.0/24 (wider than /16; public), so Traefik takes the client address in a PROXY protocol header from clients there${CLIENT}`,
            `Deployment "traefik-deployment" container "traefik" sets TRAEFIK_ENTRYPOINTS_WEB_FORWARDEDHEADERS_TRUSTEDIPS to 0.0.0.0/0 (wider than /16), so Traefik takes X-Forwarded-For (and the other X-Forwarded-* headers) from clients there${CLIENT}`,
        ]);
        expect(await messages("edge-gateway-contract", [traefik(["--entryPoints.web.forwardedHeaders.insecure=false", "--entryPoints.web.forwardedHeaders.trustedIPs=10.244.0.0/16"])])).toEqual([]);
    });
});
