/** Kubernetes label selector matching (pure). */
import { arr, isRecord, str } from "./values";
import type { Labels } from "./workloads";

export interface LabelSelector {
    matchLabels?: Record<string, string>;
    matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** True when the selector selects nothing in particular, i.e. every pod (`{}`). */
export function isEmptySelector(sel: unknown): boolean {
    if (sel === undefined || sel === null) return true;
    if (!isRecord(sel)) return false;
    const ml = isRecord(sel.matchLabels) ? Object.keys(sel.matchLabels).length : 0;
    const me = arr(sel.matchExpressions).length;
    return ml === 0 && me === 0;
}

/** Does a LabelSelector (matchLabels + matchExpressions) select pods with these labels? */
export function selectorMatches(sel: unknown, labels: Labels): boolean {
    if (!isRecord(sel)) return false;
    if (isRecord(sel.matchLabels)) {
        for (const [k, v] of Object.entries(sel.matchLabels)) {
            if (labels[k] !== str(v)) return false;
        }
    }
    for (const e of arr(sel.matchExpressions)) {
        if (!isRecord(e)) return false;
        const key = str(e.key);
        if (key === undefined) return false;
        const values = arr(e.values).map((v) => str(v));
        const has = Object.prototype.hasOwnProperty.call(labels, key);
        switch (e.operator) {
            case "In": if (!has || !values.includes(labels[key])) return false; break;
            case "NotIn": if (has && values.includes(labels[key])) return false; break;
            case "Exists": if (!has) return false; break;
            case "DoesNotExist": if (has) return false; break;
            default: return false;
        }
    }
    return true;
}

/** A Service-style selector (plain map): every key/value must be present on the pod. */
export function mapSelectorMatches(sel: unknown, labels: Labels): boolean {
    if (!isRecord(sel) || Object.keys(sel).length === 0) return false;
    return Object.entries(sel).every(([k, v]) => labels[k] === str(v));
}

/**
 * A LabelSelector with no positive requirement: no matchLabels, and every expression `NotIn` or
 * `DoesNotExist` (or `Exists` on a label in `everyOneHas`, such as `kubernetes.io/metadata.name` on
 * namespaces). It matches every object but those it names, every one created later included: as wide
 * as `{}` (which it includes). An expression that is not an object is taken as narrowing.
 */
export function excludesOnly(sel: unknown, everyOneHas: readonly string[] = []): boolean {
    if (!isRecord(sel)) return false;
    if (isRecord(sel.matchLabels) && Object.keys(sel.matchLabels).length > 0) return false;
    return arr(sel.matchExpressions).every((e) => isRecord(e) &&
        (e.operator === "NotIn" || e.operator === "DoesNotExist" || (e.operator === "Exists" && everyOneHas.includes(str(e.key) ?? ""))));
}
