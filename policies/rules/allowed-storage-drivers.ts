import { StackValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { arr, hasUnknown, isRecord, isUnknown, str } from "../lib/values";
import { describe, K8S_WORKLOAD_TYPES, metadataAnnotations, objectName, podTemplate } from "../lib/workloads";

/**
 * Session 49. PSS restricted allows `csi` and `ephemeral` volumes, and a PersistentVolume or a
 * StorageClass may name any driver: what a CSI driver mounts is the driver's to decide. A
 * secrets-store driver (secrets-store.csi.k8s.io) fetches cloud secrets with the node's or the
 * pod's identity, a host-path driver (hostpath.csi.k8s.io, rancher.io/local-path) mounts a directory
 * of the node, an SMB or NFS driver a share: none of it is a hostPath the pod policies see. So every
 * driver the program names is one the operator has reviewed and listed.
 */
export interface StorageDriversConfig {
    /** CSI drivers and StorageClass provisioners reviewed for use (`ebs.csi.aws.com`); none by default. */
    allowedStorageDrivers: string[];
    /**
     * StorageClasses of the cluster (not declared by the stack) whose provisioner has been reviewed. Empty (the
     * default): a claim of an undeclared class is not judged; once it lists any, a claim naming another is refused.
     */
    allowedStorageClasses: string[];
    /**
     * Session 50: the cluster's default StorageClass, which provisions a claim naming no class. Empty (the
     * default): such a claim is refused, unless the stack declares a class marked default; set, the class
     * must be declared or listed in allowedStorageClasses.
     */
    defaultStorageClass: string;
}

const defaults: StorageDriversConfig = { allowedStorageDrivers: [], allowedStorageClasses: [], defaultStorageClass: "" };

/** A StorageClass of any storage.k8s.io version (a chart renders v1beta1 too). */
const STORAGE_CLASS = /^kubernetes:storage\.k8s\.io\/[^:]+:StorageClass$/;
const PERSISTENT_VOLUME = "kubernetes:core/v1:PersistentVolume";
const PERSISTENT_VOLUME_CLAIM = "kubernetes:core/v1:PersistentVolumeClaim";
/** Provisions nothing: its claims bind to PersistentVolumes made by hand, judged as declared. */
const NO_PROVISIONER = "kubernetes.io/no-provisioner";
/** The annotations (GA and beta) that make a StorageClass the one a class-less claim gets at admission. */
const DEFAULT_CLASS_ANNOTATIONS = ["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"];

/** The class a claim gets: its storageClassName, or (field unset) the default class, declared or configured; undefined when unknown. */
function claimedClass(spec: Record<string, any>, defaultClass: string | undefined): string | undefined {
    if (isUnknown(spec.storageClassName)) return undefined;
    return spec.storageClassName === undefined || spec.storageClassName === null ? defaultClass : str(spec.storageClassName)?.trim();
}

/** A claim's spec with where it sits: a PVC's own, a StatefulSet's volumeClaimTemplates, a pod's generic ephemeral volume. */
interface Claim {
    who: string;
    urn: string;
    spec: Record<string, any>;
}

/** Every claim the stack declares, named for messages. */
function claims(resources: StackResource[]): Claim[] {
    const out: Claim[] = [];
    for (const r of resources) {
        const who = describe(r.type, r.name);
        if (r.type === PERSISTENT_VOLUME_CLAIM && isRecord(r.props.spec)) out.push({ who, urn: r.urn, spec: r.props.spec });
        if (!K8S_WORKLOAD_TYPES.includes(r.type)) continue;
        arr(r.props.spec?.volumeClaimTemplates).filter(isRecord).forEach((t, i) => {
            if (isRecord(t.spec)) out.push({ who: `${who} volumeClaimTemplates[${i}] (${str(t.metadata?.name) ?? "unnamed"})`, urn: r.urn, spec: t.spec });
        });
        for (const v of arr(podTemplate(r.type, r.props)?.spec.volumes).filter(isRecord)) {
            const spec = v.ephemeral?.volumeClaimTemplate?.spec;
            if (isRecord(spec)) out.push({ who: `${who} ephemeral volume "${str(v.name) ?? "unnamed"}"`, urn: r.urn, spec });
        }
    }
    return out;
}

const FIX = "a CSI driver decides what it mounts (a secrets store fetches secrets with the node's identity, a host-path driver a directory " +
    "of the node) past every pod check: use a reviewed driver, or list this one in allowedStorageDrivers once reviewed.";

/**
 * The drivers the stack names outside `allowedStorageDrivers`: a pod's CSI inline volume (`csi.driver`),
 * a PersistentVolume's `spec.csi.driver`, and a StorageClass's `provisioner` (with the claims of the
 * stack that use it: PVCs, claim templates, generic ephemeral volumes); and (session 49, the same class)
 * a claim populated from another volume (`dataSource`, `dataSourceRef`: a clone of a datastore's claim
 * or its snapshot holds its files) or bound by `volumeName` to a PersistentVolume the stack does not
 * declare. Values unknown during preview are left to `up`.
 */
export function storageDriverFindings(resources: StackResource[], cfg: StorageDriversConfig = defaults): Finding[] {
    const allowed = (driver: string) => cfg.allowedStorageDrivers.includes(driver);
    const declaredClaims = claims(resources);
    // Session 50: a claim naming no class gets the cluster's default at admission: a class the stack declares as
    // default (an annotation set to "true"), else the one the config names; neither, and it is refused below.
    const declaredDefault = resources.find((r) => STORAGE_CLASS.test(r.type) && DEFAULT_CLASS_ANNOTATIONS.some((a) => str(metadataAnnotations(r.props)[a])?.trim() === "true"));
    const defaultClass = declaredDefault ? objectName(declaredDefault.props, declaredDefault.name) : cfg.defaultStorageClass.trim() || undefined;
    const out: Finding[] = [];
    for (const r of resources) {
        const who = describe(r.type, r.name);
        if (K8S_WORKLOAD_TYPES.includes(r.type)) {
            for (const v of arr(podTemplate(r.type, r.props)?.spec.volumes).filter(isRecord)) {
                const driver = isRecord(v.csi) ? str(v.csi.driver) : undefined;
                if (driver !== undefined && !allowed(driver)) {
                    out.push({ urn: r.urn, message: `${who} volume "${str(v.name) ?? "unnamed"}" is a CSI inline volume of driver ${driver}, not in allowedStorageDrivers: ${FIX}` });
                }
            }
        }
        const pvDriver = r.type === PERSISTENT_VOLUME && isRecord(r.props.spec?.csi) ? str(r.props.spec.csi.driver) : undefined;
        if (pvDriver !== undefined && !allowed(pvDriver)) {
            out.push({ urn: r.urn, message: `${who} is a CSI volume of driver ${pvDriver}, not in allowedStorageDrivers: ${FIX}` });
        }
        const provisioner = STORAGE_CLASS.test(r.type) ? str(r.props.provisioner) : undefined;
        if (provisioner !== undefined && provisioner !== NO_PROVISIONER && !allowed(provisioner)) {
            const name = objectName(r.props, r.name);
            const users = declaredClaims.filter((c) => claimedClass(c.spec, defaultClass) === name).map((c) => c.who);
            out.push({
                urn: r.urn,
                message: `${who} provisions with ${provisioner}, not in allowedStorageDrivers${users.length ? ` (claimed by ${users.join(", ")})` : ""}: ${FIX}`,
            });
        }
    }
    const declaredVolumes = new Set(resources.filter((r) => r.type === PERSISTENT_VOLUME).map((r) => objectName(r.props, r.name)));
    const declaredClasses = new Set(resources.filter((r) => STORAGE_CLASS.test(r.type)).map((r) => objectName(r.props, r.name)));
    for (const c of declaredClaims) {
        const storageClass = str(c.spec.storageClassName)?.trim();
        const unset = c.spec.storageClassName === undefined || c.spec.storageClassName === null;
        const claimed = claimedClass(c.spec, defaultClass);
        const undeclared = claimed && !declaredClasses.has(claimed) && !cfg.allowedStorageClasses.includes(claimed);
        if (unset && !str(c.spec.volumeName)?.trim() && (claimed === undefined || undeclared)) {
            const why = claimed === undefined
                ? "whichever class the cluster marks default when the claim is made (none, or one whose provisioner the pack never sees)"
                : `the cluster's default class "${claimed}" (defaultStorageClass), which the stack does not declare and allowedStorageClasses does not list`;
            out.push({
                urn: c.urn,
                message: `${c.who} names no storageClassName, so it is provisioned by ${why}; name a declared or listed StorageClass in storageClassName, ` +
                    "or set defaultStorageClass to the cluster's default class and list it in allowedStorageClasses once its provisioner is reviewed.",
            });
        } else if (storageClass && cfg.allowedStorageClasses.length > 0 && undeclared) {
            out.push({
                urn: c.urn,
                message: `${c.who} claims StorageClass "${storageClass}", which the stack does not declare and allowedStorageClasses does not list: its provisioner ` +
                    "is out of the pack's sight; list the class once its provisioner is reviewed, or declare the StorageClass.",
            });
        }
        // storageClassName "" is static binding: without a volumeName, any PersistentVolume without a class the cluster holds.
        if (storageClass === "" && !str(c.spec.volumeName)?.trim()) {
            out.push({
                urn: c.urn,
                message: `${c.who} binds any PersistentVolume without a class the cluster holds (storageClassName ""), out of the pack's sight ` +
                    "(a node's directory, another workload's released data); let a StorageClass provision the claim, or name a declared PersistentVolume in volumeName.",
            });
        }
        // A claim bound by name to a PersistentVolume the stack does not declare: whatever the cluster holds under that name.
        const volumeName = str(c.spec.volumeName)?.trim();
        if (volumeName && !declaredVolumes.has(volumeName)) {
            out.push({
                urn: c.urn,
                message: `${c.who} binds PersistentVolume "${volumeName}" (volumeName), which the stack does not declare: its type and driver (a node's directory, ` +
                    "a share, another workload's released data) are out of the pack's sight; let a StorageClass provision the claim, or declare the PersistentVolume.",
            });
        }
        for (const key of ["dataSource", "dataSourceRef"]) {
            const source = c.spec[key];
            if (!isRecord(source) || hasUnknown(source)) continue;
            out.push({
                urn: c.urn,
                message: `${c.who} is populated from ${str(source.kind) ?? "a source"} "${str(source.name) ?? "unnamed"}" (${key}): a copy of another volume's ` +
                    "files (a datastore's data, its credentials) in whatever pod mounts the claim; restore a datastore from its backups, and give other workloads empty claims.",
            });
            break;
        }
    }
    return out;
}

export const allowedStorageDrivers: StackValidationPolicy = {
    name: "allowed-storage-drivers",
    description:
        "Kubernetes storage only through reviewed drivers: a pod's CSI inline volume, a PersistentVolume's CSI driver and a StorageClass's " +
        "provisioner (which generic ephemeral volumes and claims use) are listed in allowedStorageDrivers (none by default; " +
        "kubernetes.io/no-provisioner provisions nothing); no claim is populated from another volume (dataSource, dataSourceRef) or bound to a PersistentVolume the stack does not declare, or to any class-less one; once " +
        "allowedStorageClasses lists any, claims name a declared or listed StorageClass; a claim naming no class gets the cluster's default, a StorageClass " +
        "the stack declares as default or defaultStorageClass (declared or listed in allowedStorageClasses), else it is refused.",
    severity: "high",
    configSchema: {
        properties: {
            allowedStorageDrivers: { type: "array", items: { type: "string" }, default: defaults.allowedStorageDrivers },
            allowedStorageClasses: { type: "array", items: { type: "string" }, default: defaults.allowedStorageClasses },
            defaultStorageClass: { type: "string", default: defaults.defaultStorageClass },
        },
    },
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => r.type.startsWith("kubernetes:"))) args.notApplicable("no Kubernetes resources in this stack");
        for (const f of storageDriverFindings(resources, readConfig(args, defaults))) reportViolation(f.message, f.urn);
    },
};
