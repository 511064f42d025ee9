import { describe, expect, it } from "vitest";
import { admitsAnyOrigin } from "../../policies/rules/ingress-cors";
import { ingress, prodStack } from "./fixtures";
import { runPack, UNKNOWN } from "./run-pack";

/**
 * ingress-cors (session 38's configuration hunt: an Ingress's enable-cors annotations were not judged).
 * ingress-nginx defaults cors-allow-origin to "*" and cors-allow-credentials to true.
 */
describe("ingress-cors", () => {
    const run = (rs: Parameters<typeof runPack>[0], cfg: "dev" | "prod" = "prod") => runPack(rs, cfg, { only: ["ingress-cors"] });
    const cors = (annotations: Record<string, string>, backends?: string[]) => ingress({
        annotations: { "nginx.ingress.kubernetes.io/ssl-redirect": "true", ...Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`nginx.ingress.kubernetes.io/${k}`, v])) },
        backends,
    });
    const credentialed = "any web page a signed-in user visits sends requests with that user's cookies or HTTP authentication and reads the answers; " +
        "list the platform's own origins in cors-allow-origin (https://<trading:ingressHost>), or set cors-allow-credentials: \"false\".";

    it("passes the platform's Ingress, CORS off, and CORS for listed origins", async () => {
        expect(await run(prodStack())).toEqual([]);
        expect(await run([cors({ "enable-cors": "false", "cors-allow-origin": "*" })])).toEqual([]);
        expect(await run([cors({ "enable-cors": "true", "cors-allow-origin": "https://trading.example.com, https://*.trading.example.com" })])).toEqual([]);
        // Not known during preview: judged at `up`.
        expect(await run([cors({ "enable-cors": "true", "cors-allow-origin": UNKNOWN })])).toEqual([]);
        // Any origin without credentials, on an Ingress that does not route to the gateway.
        expect(await run([cors({ "enable-cors": "true", "cors-allow-origin": "*", "cors-allow-credentials": "false" }, ["grafana"])])).toEqual([]);
    });

    it("rejects CORS for any origin with credentials, explicit or by ingress-nginx's defaults, mandatory on prod and advisory on dev", async () => {
        const vs = await run([
            cors({ "enable-cors": "true", "cors-allow-origin": "*", "cors-allow-credentials": "true" }, ["grafana"]),
            cors({ "enable-cors": "true" }),
            cors({ "enable-cors": "True", "cors-allow-origin": "https://trading.example.com, *" }),
            cors({ "enable-cors": "1", "cors-allow-origin": "null", "cors-allow-credentials": "yes" }),
        ]);
        expect(vs.map((v) => `${v.enforcementLevel} ${v.message.replace(credentialed, "")}`)).toEqual([
            "mandatory Ingress \"nginx-ingress\" enables CORS for any origin (cors-allow-origin \"*\", admitting \"*\") with credentials (cors-allow-credentials \"true\"): ",
            "mandatory Ingress \"nginx-ingress\" enables CORS for any origin (no cors-allow-origin, which ingress-nginx defaults to \"*\", admitting \"*\") with credentials (no cors-allow-credentials, which ingress-nginx defaults to true): ",
            "mandatory Ingress \"nginx-ingress\" enables CORS for any origin (cors-allow-origin \"https://trading.example.com, *\", admitting \"*\") with credentials (no cors-allow-credentials, which ingress-nginx defaults to true): ",
            // "yes" is no boolean to ingress-nginx: the default (true) stays.
            "mandatory Ingress \"nginx-ingress\" enables CORS for any origin (cors-allow-origin \"null\", admitting \"null\") with credentials (cors-allow-credentials \"yes\"): ",
        ]);
        expect((await run([cors({ "enable-cors": "true" })], "dev")).map((v) => v.enforcementLevel)).toEqual(["advisory"]);
    });

    it("reports any-origin CORS on the API gateway's Ingress even without credentials", async () => {
        expect((await run([cors({ "enable-cors": "true", "cors-allow-origin": "https://*", "cors-allow-credentials": "false" })])).map((v) => v.message)).toEqual([
            "Ingress \"nginx-ingress\" routes to the platform's entry point (api-gateway) and enables CORS for any origin (cors-allow-origin \"https://*\"): " +
            "every web page reads the API's answers to the requests it sends; list the platform's own origins in cors-allow-origin (https://<trading:ingressHost>), " +
            "or leave CORS off (the platform's clients are served from its own host).",
        ]);
    });

    it("reads an origin as admitting any site when it is *, null, an nginx variable, or a wildcard over a whole top-level domain", () => {
        for (const o of ["*", " * ", "null", "$http_origin", "https://*", "http://*:443", "https://*.com", "*.io"]) expect(admitsAnyOrigin(o), o).toBe(true);
        for (const o of ["https://trading.example.com", "https://*.example.com", "http://localhost:3000"]) expect(admitsAnyOrigin(o), o).toBe(false);
    });
});
