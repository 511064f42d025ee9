/** Plain view of stack resources for stack policies (pure helpers take this). */
import type { PolicyResource } from "@pulumi/policy";
import { plain } from "./values";

export interface StackResource {
    type: string;
    name: string;
    urn: string;
    props: Record<string, any>;
}

export function plainResources(resources: PolicyResource[]): StackResource[] {
    return resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: plain(r.props) }));
}
