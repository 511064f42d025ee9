/**
 * Session 51: the ingress-nginx controller ConfigMap read as the controller reads it (pure). ingress-nginx
 * decodes most of its settings with mapstructure (weakly typed, by the keys' JSON names), which matches a
 * key exactly, else in any case (`Server-Snippet`, `OTLP-Collector-Host` are its settings too), and reads
 * a boolean as Go's strconv.ParseBool (`1`, `t`, `T`, `TRUE`, `true`, `True`; `0`, `f`, `F`, `FALSE`, …).
 * A few keys (`global-auth-url`, `hide-headers`, …) are read by their exact name before that: read those
 * from `props.data` as written.
 */
import { isRecord, str } from "./values";

/** The controller's settings by lower-case key (a key written in lower case wins over another spelling). */
export function controllerSettings(props: Record<string, any>): Map<string, string> {
    const out = new Map<string, string>();
    const data = isRecord(props.data) ? props.data : {};
    for (const [key, value] of Object.entries(data)) {
        const v = str(value);
        if (v !== undefined && (!out.has(key.toLowerCase()) || key === key.toLowerCase())) out.set(key.toLowerCase(), v);
    }
    return out;
}

/** A setting's boolean as strconv.ParseBool reads it (surrounding spaces aside); undefined when it reads none. */
export function goBool(value: string | undefined): boolean | undefined {
    const v = value?.trim();
    if (v === undefined) return undefined;
    if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
    return ["0", "f", "F", "FALSE", "false", "False"].includes(v) ? false : undefined;
}

/**
 * Session 52: a setting ReadConfig takes by its exact key first (`hide-headers`, `proxy-real-ip-cidr`: a comma-separated list)
 * and that mapstructure still decodes into its field when written in another case (`Hide-Headers`), as one value (weak
 * typing makes a string a one-element list, not split): every item the controller ends with, exact key or not. (Those
 * with no field of that name, `global-auth-url`, `global-auth-response-headers`, are ignored in another case.)
 */
export function exactFirstList(props: Record<string, any>, key: string): string[] {
    const data = isRecord(props.data) ? props.data : {};
    return Object.entries(data).flatMap(([k, v]) => {
        const value = str(v);
        if (value === undefined || k.toLowerCase() !== key) return [];
        return (k === key ? value.split(",") : [value]).map((h) => h.trim()).filter((h) => h !== "");
    });
}
