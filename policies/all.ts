/** The pack's policies, in report order. Kept apart from index.ts so tests can load them without serving the pack. */
import { Policies } from "@pulumi/policy";
import { admissionPolicyBindingsEnforce } from "./rules/admission-policy-bindings-enforce";
import { allowedImageRegistries } from "./rules/allowed-image-registries";
import { allowedStorageDrivers } from "./rules/allowed-storage-drivers";
import { automountServiceAccountToken } from "./rules/automount-service-account-token";
import { clusterDnsOnly } from "./rules/cluster-dns-only";
import { credentialsFromSecretRefs } from "./rules/credentials-from-secret-refs";
import { datastoreBackups } from "./rules/datastore-backups";
import { datastorePersistentStorage } from "./rules/datastore-persistent-storage";
import { dockerLogsOnHost } from "./rules/docker-logs-on-host";
import { dropAllCapabilities } from "./rules/drop-all-capabilities";
import { edgeTlsOnly } from "./rules/edge-tls-only";
import { emptyDirSizeLimit } from "./rules/emptydir-size-limit";
import { handMadeEndpoints } from "./rules/hand-made-endpoints";
import { healthChecks } from "./rules/health-checks";
import { jobActiveDeadlines } from "./rules/job-active-deadlines";
import { ingressCors } from "./rules/ingress-cors";
import { edgeGatewayContract } from "./rules/edge-gateway-contract";
import { ingressHosts } from "./rules/ingress-hosts";
import { ingressInternalBackends } from "./rules/ingress-internal-backends";
import { ingressNoExternalForwarding } from "./rules/ingress-no-external-forwarding";
import { ingressNoSnippets } from "./rules/ingress-no-snippets";
import { ingressUniqueRoutes } from "./rules/ingress-unique-routes";
import { networkPolicyDefaultDeny } from "./rules/network-policy-default-deny";
import { noApiServerCallouts } from "./rules/no-api-server-callouts";
import { noBarePods } from "./rules/no-bare-pods";
import { noControlPlaneScheduling } from "./rules/no-control-plane-scheduling";
import { noDefaultCredentials } from "./rules/no-default-credentials";
import { noInsecureRuntimeFlags } from "./rules/no-insecure-runtime-flags";
import { noMutatingAdmission } from "./rules/no-mutating-admission";
import { noObjectPatches } from "./rules/no-object-patches";
import { noUncheckedRoutes } from "./rules/no-unchecked-routes";
import { noUncheckedWorkloads } from "./rules/no-unchecked-workloads";
import { noPrivilegeEscalation } from "./rules/no-privilege-escalation";
import { noPrivilegedContainers } from "./rules/no-privileged-containers";
import { noPublicExposure } from "./rules/no-public-exposure";
import { noSystemPriority } from "./rules/no-system-priority";
import { nonRootGroups } from "./rules/non-root-groups";
import { pidsLimit } from "./rules/pids-limit";
import { pinnedImageTags } from "./rules/pinned-image-tags";
import { podAntiAffinity } from "./rules/pod-anti-affinity";
import { podSecurityAppArmor } from "./rules/pod-security-apparmor";
import { podSecurityHostProbes } from "./rules/pod-security-host-probes";
import { podSecurityProcMount } from "./rules/pod-security-proc-mount";
import { podSecuritySeLinux } from "./rules/pod-security-selinux";
import { podSecuritySysctls } from "./rules/pod-security-sysctls";
import { podSecurityVolumeTypes } from "./rules/pod-security-volume-types";
import { prometheusAlertRules } from "./rules/prometheus-alert-rules";
import { protectedNamespaces } from "./rules/protected-namespaces";
import { pullNeverLocalImages } from "./rules/pull-never-local-images";
import { rbacBoundRolesDeclared } from "./rules/rbac-bound-roles-declared";
import { rbacLeastPrivilege } from "./rules/rbac-least-privilege";
import { readOnlyRootFilesystem } from "./rules/read-only-root-filesystem";
import { requiredWorkloadLabels } from "./rules/required-workload-labels";
import { resourceLimits } from "./rules/resource-limits";
import { runAsNonRoot } from "./rules/run-as-non-root";
import { secretFileModes } from "./rules/secret-file-modes";
import { selectorsMatchWorkloads } from "./rules/selectors-match-workloads";
import { serversRequireAuthentication } from "./rules/servers-require-authentication";
import { serviceMinReplicas } from "./rules/service-min-replicas";
import { serviceAccountTokensBound } from "./rules/service-account-tokens-bound";
import { servicePodDisruptionBudget } from "./rules/service-pod-disruption-budget";
import { strongGeneratedSecrets } from "./rules/strong-generated-secrets";
import { trustedCertificateIssuers } from "./rules/trusted-certificate-issuers";
import { uniqueWorkloadIdentity } from "./rules/unique-workload-identity";
import { workloadSecretScope } from "./rules/workload-secret-scope";
import { validatingWebhooksCoverNamespaces } from "./rules/validating-webhooks-cover-namespaces";
import { workloadVolumeScope } from "./rules/workload-volume-scope";
import { workloadsInDeclaredNamespaces } from "./rules/workloads-in-declared-namespaces";

export const PACK_NAME = "trading-hardening";

export const policies: Policies = [
    // Credentials
    noDefaultCredentials,
    serversRequireAuthentication,
    strongGeneratedSecrets,
    credentialsFromSecretRefs,
    workloadSecretScope,
    secretFileModes,
    workloadVolumeScope,
    uniqueWorkloadIdentity,
    // TLS and exposure
    edgeTlsOnly,
    trustedCertificateIssuers,
    ingressHosts,
    ingressUniqueRoutes,
    ingressNoSnippets,
    ingressNoExternalForwarding,
    ingressCors,
    edgeGatewayContract,
    noPublicExposure,
    ingressInternalBackends,
    handMadeEndpoints,
    noUncheckedRoutes,
    networkPolicyDefaultDeny,
    clusterDnsOnly,
    // Namespaces and API access
    protectedNamespaces,
    workloadsInDeclaredNamespaces,
    automountServiceAccountToken,
    serviceAccountTokensBound,
    rbacLeastPrivilege,
    rbacBoundRolesDeclared,
    // Container hardening
    noPrivilegedContainers,
    noControlPlaneScheduling,
    noSystemPriority,
    dropAllCapabilities,
    runAsNonRoot,
    noPrivilegeEscalation,
    noInsecureRuntimeFlags,
    nonRootGroups,
    podSecurityAppArmor,
    podSecuritySeLinux,
    podSecurityProcMount,
    podSecurityHostProbes,
    podSecuritySysctls,
    podSecurityVolumeTypes,
    allowedStorageDrivers,
    readOnlyRootFilesystem,
    resourceLimits,
    jobActiveDeadlines,
    pidsLimit,
    dockerLogsOnHost,
    emptyDirSizeLimit,
    healthChecks,
    pinnedImageTags,
    allowedImageRegistries,
    pullNeverLocalImages,
    requiredWorkloadLabels,
    noBarePods,
    noUncheckedWorkloads,
    noObjectPatches,
    noMutatingAdmission,
    noApiServerCallouts,
    validatingWebhooksCoverNamespaces,
    admissionPolicyBindingsEnforce,
    selectorsMatchWorkloads,
    // Availability and recovery (prod)
    serviceMinReplicas,
    servicePodDisruptionBudget,
    podAntiAffinity,
    datastorePersistentStorage,
    datastoreBackups,
    prometheusAlertRules,
];
