/** Security helpers shared by the container rules (pure). */
import { arr, num, str } from "./values";
import { parseImageRef } from "../../catalog/images";

export function capabilityList(value: unknown): string[] {
    return arr(value).map((c) => str(c)).filter((c): c is string => !!c).map((c) => c.toUpperCase().replace(/^CAP_/, ""));
}

/** Docker `user`: "name", "uid", "name:group", "uid:gid". Root when empty, "root" or uid 0. */
export function isRootUser(user: string | undefined): boolean {
    if (user === undefined) return true;
    const name = user.split(":")[0].trim();
    return name === "" || name === "root" || num(name) === 0;
}

/** Does an exemption list (workload names or image basenames) cover this container? */
export function exempt(list: string[], workload: string, image: string | undefined): boolean {
    if (list.includes(workload)) return true;
    if (image === undefined) return false;
    const ref = parseImageRef(image);
    return list.includes(ref.basename) || list.includes(ref.repository);
}
