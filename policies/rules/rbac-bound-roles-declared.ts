import { StackValidationPolicy } from "@pulumi/policy";
import { Finding, plainResources, StackResource } from "../lib/stack";
import { isUnknown, str } from "../lib/values";
import { describe, K8S, namespaceOf, objectName } from "../lib/workloads";

const BINDINGS = [K8S.roleBinding, K8S.clusterRoleBinding];
/**
 * Built-in ClusterRoles whose binding rbac-least-privilege already judges: cluster-admin, admin, edit and system:* are
 * refused there; view (read-only, no Secrets, by the cluster's own contract) is the one built-in a binding may name.
 */
const JUDGED_ELSEWHERE = (role: string) => ["cluster-admin", "admin", "edit", "view"].includes(role) || role.startsWith("system:");

/**
 * Session 63. rbac-least-privilege judges the rules of every Role and ClusterRole the program declares, and a binding by
 * its subjects and the built-in role it names; a binding naming a role the stack does not declare (an operator's or a
 * chart's ClusterRole installed beside the program, ingress-nginx's reading every Secret of the cluster; a Role someone
 * made in the namespace) handed its subjects rules no policy read. Such a binding is refused: the pack refuses what it
 * cannot check. A role name unknown during preview (the binding's, or any declared role's of that kind) is judged at `up`.
 */
export function undeclaredRoleBindings(resources: StackResource[]): Finding[] {
    const roles = resources.filter((r) => r.type === K8S.role || r.type === K8S.clusterRole);
    if (roles.some((r) => isUnknown(r.props.metadata?.name))) return [];
    const out: Finding[] = [];
    for (const b of resources.filter((r) => BINDINGS.includes(r.type))) {
        const ref = b.props.roleRef;
        if (isUnknown(ref) || isUnknown(ref?.name)) continue;
        const name = str(ref?.name);
        const kind = str(ref?.kind) ?? "ClusterRole";
        if (name === undefined || (kind === "ClusterRole" && JUDGED_ELSEWHERE(name))) continue;
        const declared = kind === "Role"
            ? roles.some((r) => r.type === K8S.role && objectName(r.props, r.name) === name && namespaceOf(r.props) === namespaceOf(b.props))
            : roles.some((r) => r.type === K8S.clusterRole && objectName(r.props, r.name) === name);
        if (declared) continue;
        out.push({
            urn: b.urn,
            message: `${describe(b.type, b.name)} binds the ${kind} "${name}", which the stack does not declare${kind === "Role" ? " in its namespace" : ""}: ` +
                "its rules (whoever made it, granting whatever they chose, every Secret of the cluster included) are read by no policy; declare the role " +
                "in the program (rbac-least-privilege then judges its rules), or bind one it declares.",
        });
    }
    return out;
}

export const rbacBoundRolesDeclared: StackValidationPolicy = {
    name: "rbac-bound-roles-declared",
    description:
        "A RoleBinding or ClusterRoleBinding binds a Role or ClusterRole the program declares (whose rules rbac-least-privilege judges), or the " +
        "built-in view; a role installed beside the program grants rules no policy reads (session 63).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => BINDINGS.includes(r.type))) args.notApplicable("no role bindings");
        for (const f of undeclaredRoleBindings(resources)) reportViolation(f.message, f.urn);
    },
};
