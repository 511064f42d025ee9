import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { entryPoint } from "../../catalog/services";
import { ingressBackendServices } from "../lib/routes";
import { goBool } from "../lib/controller-config";
import { arr, isRecord, isUnknown, plain, str } from "../lib/values";
import { TRAEFIK_MIDDLEWARE } from "../lib/routes";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

/**
 * ingress-nginx's CORS annotations (session 38's configuration hunt: not judged). With
 * `enable-cors: "true"` the controller answers every origin listed in `cors-allow-origin` (default
 * `*`) with `Access-Control-Allow-Origin`, and `cors-allow-credentials` defaults to true. An origin
 * list that admits any site (`*`, `null`, which sandboxed frames and local files send, an nginx
 * variable such as `$http_origin`, a wildcard over a whole top-level domain such as `https://*.com`)
 * together with credentials lets any page a signed-in user visits send requests with that user's
 * cookies or HTTP authentication and read the answers: refused on every Ingress. On the Ingress of the
 * platform's entry point (the API gateway, catalog/services.ts) any-origin CORS is reported even
 * without credentials: the gateway's clients are served from its own host, and every page on the web
 * would read its answers.
 */
const PREFIX = "nginx.ingress.kubernetes.io/";

/** ingress-nginx reads booleans with Go's strconv.ParseBool (lib/controller-config.ts goBool); a value it cannot parse keeps the default. */
const parseBool = (value: string | undefined, fallback: boolean): boolean => goBool(value) ?? fallback;

/** Does one `cors-allow-origin` entry admit any site? */
export function admitsAnyOrigin(origin: string): boolean {
    const o = origin.trim();
    if (o === "*" || o.toLowerCase() === "null" || o.includes("$")) return true;
    const host = o.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/:(\d+|\*)$/, "");
    return host === "*" || /^\*\.[^.]+$/.test(host);
}

export interface CorsProblem {
    problem: string;
    fix: string;
}

/** What is wrong with an Ingress's CORS annotations (`props` plain); an annotation unknown during preview is not judged. */
export function ingressCorsProblems(props: Record<string, any>, gateway: string | undefined = entryPoint()?.name): CorsProblem[] {
    const raw = props.metadata?.annotations;
    if (!isRecord(raw)) return [];
    const keys = ["enable-cors", "cors-allow-origin", "cors-allow-credentials"].map((k) => `${PREFIX}${k}`);
    if (keys.some((k) => isUnknown(raw[k]))) return [];
    const [enable, originValue, credentialsValue] = keys.map((k) => str(raw[k]));
    if (!parseBool(enable, false)) return [];
    const origins = (originValue ?? "*").split(",").map((o) => o.trim()).filter((o) => o !== "");
    const wide = (origins.length === 0 ? ["*"] : origins).filter(admitsAnyOrigin);
    if (wide.length === 0) return [];
    const origin = originValue === undefined ? "no cors-allow-origin, which ingress-nginx defaults to \"*\"" : `cors-allow-origin "${originValue}"`;
    const own = "list the platform's own origins in cors-allow-origin (https://<trading:ingressHost>)";
    if (parseBool(credentialsValue, true)) {
        const credentials = credentialsValue === undefined ? "no cors-allow-credentials, which ingress-nginx defaults to true" : `cors-allow-credentials "${credentialsValue}"`;
        return [{
            problem: `enables CORS for any origin (${origin}, admitting ${wide.map((o) => `"${o}"`).join(", ")}) with credentials (${credentials}): ` +
                "any web page a signed-in user visits sends requests with that user's cookies or HTTP authentication and reads the answers",
            fix: `${own}, or set cors-allow-credentials: "false"`,
        }];
    }
    if (gateway !== undefined && ingressBackendServices(props).includes(gateway)) {
        return [{
            problem: `routes to the platform's entry point (${gateway}) and enables CORS for any origin (${origin}): every web page reads the API's answers to the requests it sends`,
            fix: `${own}, or leave CORS off (the platform's clients are served from its own host)`,
        }];
    }
    return [];
}

/** Origins no list of the platform's would hold: an origin regex matching one admits any site. */
const FOREIGN_ORIGINS = ["https://evil.example", "http://evil.example", "null"];

/**
 * Session 51: a Traefik headers middleware's CORS (the local-k8s stack's ingress class). With
 * `accessControlAllowCredentials` Traefik answers an origin its list holds (`null` included, which sandboxed frames
 * send; `*`) or its regexes match (Go's, unanchored: `https://.*` matches every site) with that origin and credentials.
 */
export function middlewareCorsProblems(props: Record<string, any>): string[] {
    const headers = isRecord(props.spec?.headers) ? props.spec.headers : {};
    if (headers.accessControlAllowCredentials !== true) return [];
    const listed = arr(headers.accessControlAllowOriginList).map(str).filter((o): o is string => o !== undefined && admitsAnyOrigin(o))
        .map((o) => `accessControlAllowOriginList "${o}"`);
    const matched = arr(headers.accessControlAllowOriginListRegex).map(str).filter((r): r is string => r !== undefined).flatMap((r) => {
        let re: RegExp;
        try { re = new RegExp(r); } catch { return [`accessControlAllowOriginListRegex "${r}", not a regular expression this pack reads`]; }
        const hit = FOREIGN_ORIGINS.find((o) => re.test(o));
        return hit === undefined ? [] : [`accessControlAllowOriginListRegex "${r}" admits ${hit}`];
    });
    const wide = [...listed, ...matched];
    return wide.length ? [`enables CORS for any origin (${wide.join(", ")}) with credentials (accessControlAllowCredentials): any web page a signed-in user visits sends ` +
        "requests with that user's cookies or HTTP authentication and reads the answers; list the platform's own origins in accessControlAllowOriginList " +
        "(https://<trading:ingressHost>), or leave accessControlAllowCredentials off"] : [];
}

export const ingressCors: ResourceValidationPolicy = {
    name: "ingress-cors",
    description:
        "No Ingress enables CORS (ingress-nginx enable-cors) for any origin with credentials (cors-allow-credentials defaults to true), " +
        "and the API gateway's Ingress enables it for listed origins only; no Traefik headers middleware allows credentials for an origin list or regex admitting any site.",
    severity: "high",
    validateResource: readingListItems([
        validateResourceOfType(k8s.networking.v1.Ingress, (props, args, reportViolation) => {
            for (const p of ingressCorsProblems(plain(props))) reportViolation(`Ingress "${args.name}" ${p.problem}; ${p.fix}.`);
        }),
        (args, reportViolation) => {
            if (TRAEFIK_MIDDLEWARE.test(args.type)) for (const p of middlewareCorsProblems(plain(args.props))) reportViolation(`${describe(args.type, args.name)} ${p}.`);
        },
    ]),
};
