/**
 * Services implemented in this image: catalog name -> lazy loader of its module.
 * Adding a service = one folder under services/ exporting `default defineService({...})` + one line here.
 */
import type { ServiceModule } from "./kit/service";

type Loader = () => Promise<ServiceModule<any>>;

export const registry: Record<string, Loader> = {
};
