/**
 * Session 51b: `*List` resources (`kubernetes:networking.k8s.io/v1:IngressList`, `…:ConfigMapList`, a custom kind's
 * `MiddlewareList`, `v1` `List`). @pulumi/kubernetes' yaml ConfigFile/ConfigGroup expand a built-in list item by item
 * (its yaml.js), but a `*List` resource declared in code (`new k8s.networking.v1.IngressList`), or a list of a custom
 * kind from a file (registered as a CustomResource of that kind), reaches the pack whole, and the API server applies
 * each item. The route policies read the items as the resources they are (`readingListItems`), the stack policies
 * through `plainResources` (lib/stack.ts).
 */
import type { ResourceValidation, ResourceValidationArgs } from "@pulumi/policy";
import { arr, isRecord, plain, str } from "./values";

const LIST = /^kubernetes:([^:]+):([A-Za-z0-9]*)List$/;

export interface ListItem { type: string; name: string; props: Record<string, any> }

/** The type token of an object of this apiVersion and kind (`v1` is the core group: `core/v1`). */
function typeOf(apiVersion: string, kind: string): string {
    return `kubernetes:${apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`}:${kind}`;
}

/** The items of a `*List` resource, each as the resource it is (an item without apiVersion or kind takes the list's); [] for any other resource. */
export function listItems(type: string, name: string, props: Record<string, any>): ListItem[] {
    const m = LIST.exec(type);
    if (!m) return [];
    const group = m[1] === "v1" || m[1] === "core/v1" ? "v1" : m[1];
    return arr(props.items).filter(isRecord).map((item, i) => {
        const kind = str(item.kind) ?? m[2];
        return { type: typeOf(str(item.apiVersion) ?? group, kind), name: str(item.metadata?.name) ?? `${name}.items[${i}]`, props: item };
    }).filter((item) => !LIST.test(item.type) || item.type !== type);
}

/** Thrown by an item's notApplicable: that item is skipped, not the list. */
class ItemNotApplicable extends Error {}

/**
 * The validations, run on a resource as before, and on each item of a `*List` resource as if it were declared
 * alone (its type, name and properties; `isType`/`asType` answered for the item's type as the engine answers them).
 */
export function readingListItems(validations: ResourceValidation | ResourceValidation[]): ResourceValidation[] {
    return (Array.isArray(validations) ? validations : [validations]).map((validate) => async (args, reportViolation) => {
        // Session 53: more policies read lists; the type is tested first, so no other resource's bag is copied for it.
        const items = LIST.test(args.type) ? listItems(args.type, args.name, plain(args.props)) : [];
        if (items.length === 0) return validate(args, reportViolation);
        for (const item of items) {
            const is = (cls: any) => typeof cls?.isInstance === "function" && cls.isInstance({ __pulumiType: item.type }) === true;
            const itemArgs: ResourceValidationArgs = {
                ...args, type: item.type, name: item.name, props: item.props, isType: is as any, asType: ((cls: any) => (is(cls) ? item.props : undefined)) as any,
                notApplicable: (reason?: string): never => { throw new ItemNotApplicable(reason); },
            };
            try {
                await validate(itemArgs, reportViolation);
            } catch (e) {
                if (!(e instanceof ItemNotApplicable)) throw e;
            }
        }
    });
}
