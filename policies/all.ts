/** The pack's policies, in report order. Kept apart from index.ts so tests can load them without serving the pack. */
import { Policies } from "@pulumi/policy";
import { credentialsFromSecretRefs } from "./rules/credentials-from-secret-refs";
import { datastoreBackups } from "./rules/datastore-backups";
import { dropAllCapabilities } from "./rules/drop-all-capabilities";
import { edgeTlsOnly } from "./rules/edge-tls-only";
import { healthChecks } from "./rules/health-checks";
import { networkPolicyDefaultDeny } from "./rules/network-policy-default-deny";
import { noDefaultCredentials } from "./rules/no-default-credentials";
import { noPrivilegeEscalation } from "./rules/no-privilege-escalation";
import { noPrivilegedContainers } from "./rules/no-privileged-containers";
import { noPublicExposure } from "./rules/no-public-exposure";
import { pinnedImageTags } from "./rules/pinned-image-tags";
import { prometheusAlertRules } from "./rules/prometheus-alert-rules";
import { readOnlyRootFilesystem } from "./rules/read-only-root-filesystem";
import { requiredWorkloadLabels } from "./rules/required-workload-labels";
import { resourceLimits } from "./rules/resource-limits";
import { runAsNonRoot } from "./rules/run-as-non-root";
import { serviceMinReplicas } from "./rules/service-min-replicas";
import { servicePodDisruptionBudget } from "./rules/service-pod-disruption-budget";
import { strongGeneratedSecrets } from "./rules/strong-generated-secrets";

export const PACK_NAME = "trading-hardening";

export const policies: Policies = [
    // Credentials
    noDefaultCredentials,
    strongGeneratedSecrets,
    credentialsFromSecretRefs,
    // TLS and exposure
    edgeTlsOnly,
    noPublicExposure,
    networkPolicyDefaultDeny,
    // Container hardening
    noPrivilegedContainers,
    dropAllCapabilities,
    runAsNonRoot,
    noPrivilegeEscalation,
    readOnlyRootFilesystem,
    resourceLimits,
    healthChecks,
    pinnedImageTags,
    requiredWorkloadLabels,
    // Availability and recovery (prod)
    serviceMinReplicas,
    servicePodDisruptionBudget,
    datastoreBackups,
    prometheusAlertRules,
];
