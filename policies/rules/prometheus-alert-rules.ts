import { StackValidationPolicy } from "@pulumi/policy";
import { parse } from "yaml";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { plainResources, StackResource } from "../lib/stack";
import { arr, decodeBase64, isRecord, isUnknown, str } from "../lib/values";
import { LABEL_PROMETHEUS_RULES } from "../../catalog/labels";
import { DOCKER_CONTAINER, identity, isK8sWorkload, K8S, metadataLabels } from "../lib/workloads";

export interface AlertRulesConfig {
    environment: Environment;
    /** Minimum number of alerting rules (rules with `alert:` and `expr:`). */
    minAlertRules: number;
}

const defaults: AlertRulesConfig = { environment: "prod", minAlertRules: 1 };

/** Number of alerting rules in a Prometheus rule file; undefined when the text is not a rule file. */
export function countAlertRules(text: string): number | undefined {
    let doc: any;
    try {
        doc = parse(text);
    } catch {
        return undefined;
    }
    if (!isRecord(doc) || !Array.isArray(doc.groups)) return undefined;
    let n = 0;
    for (const g of doc.groups) {
        for (const r of arr(isRecord(g) ? g.rules : undefined)) {
            if (isRecord(r) && typeof r.alert === "string" && r.alert !== "" && r.expr !== undefined && r.expr !== "") n++;
        }
    }
    return n;
}

/** Rule texts the stack ships: labelled ConfigMaps (k8s) and uploads under /etc/prometheus/rules/ (Docker). undefined entries are unknown. */
export function ruleTexts(resources: StackResource[]): Array<string | undefined> {
    const out: Array<string | undefined> = [];
    for (const r of resources) {
        if (r.type === K8S.configMap && metadataLabels(r.props)[LABEL_PROMETHEUS_RULES] === "true") {
            const data = isRecord(r.props.data) ? r.props.data : {};
            for (const v of Object.values(data)) out.push(isUnknown(v) ? undefined : str(v));
        }
        if (r.type === DOCKER_CONTAINER && identity(r.type, r.name, r.props).workload === "prometheus") {
            for (const u of arr(r.props.uploads)) {
                if (!isRecord(u) || !(str(u.file) ?? "").startsWith("/etc/prometheus/rules/")) continue;
                if (isUnknown(u.content) || isUnknown(u.contentBase64)) out.push(undefined);
                else out.push(str(u.content) ?? (str(u.contentBase64) ? decodeBase64(u.contentBase64) : undefined));
            }
        }
    }
    return out;
}

/**
 * A stack that runs services but no Prometheus evaluates no alerting rule at all: without this, prod
 * with `trading:prometheusEnabled false` passed the rule vacuously (it judged only a Prometheus that was
 * there), and a service down or a backup overdue went unnoticed. A stack without services (a datastore
 * alone) is not judged.
 */
function missingPrometheus(resources: StackResource[]): { urn?: string; message: string } | undefined {
    const services = resources.filter((r) => (r.type === DOCKER_CONTAINER || isK8sWorkload(r.type)) && identity(r.type, r.name, r.props).role === "service");
    if (services.length === 0) return undefined;
    return {
        message: `The stack deploys ${services.length} service workload(s) and no Prometheus, so no alerting rule is evaluated (a service down, ` +
            "a datastore unreachable, a backup overdue go unnoticed): deploy Prometheus with its rules (trading:prometheusEnabled true).",
    };
}

export function alertRuleProblem(resources: StackResource[], cfg: AlertRulesConfig = defaults): { urn?: string; message: string } | undefined {
    const prometheus = resources.find((r) => (r.type === DOCKER_CONTAINER || isK8sWorkload(r.type))
        && identity(r.type, r.name, r.props).workload === "prometheus");
    if (!prometheus) return missingPrometheus(resources);
    const texts = ruleTexts(resources);
    if (texts.some((t) => t === undefined)) return undefined; // computed during preview
    const count = texts.reduce((acc, t) => acc + (countAlertRules(t as string) ?? 0), 0);
    if (count >= cfg.minAlertRules) return undefined;
    return {
        urn: prometheus.urn,
        message: `Prometheus is deployed with ${count} alerting rule(s) (need ${cfg.minAlertRules}): ship rule files (YAML with ` +
            `groups[].rules[] having alert and expr) in a ConfigMap labelled ${LABEL_PROMETHEUS_RULES}=true, or on Docker as ` +
            "an upload under /etc/prometheus/rules/ — e.g. service down (up == 0), error rate, datastore unreachable.",
    };
}

export const prometheusAlertRules: StackValidationPolicy = {
    name: "prometheus-alert-rules",
    description: "On prod, a stack with services deploys Prometheus and it ships alerting rules (the guide: \"set up alerts in Prometheus\").",
    severity: "medium",
    configSchema: {
        properties: {
            environment: environmentSchema,
            minAlertRules: { type: "integer", minimum: 1, default: 1 },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        const problem = alertRuleProblem(plainResources(args.resources), cfg);
        if (problem) reportViolation(problem.message, problem.urn);
    },
};
