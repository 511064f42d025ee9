import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, policies } from "./all";

// Mandatory unless the policy config says otherwise: config/dev.json makes everything advisory,
// config/prod.json keeps everything mandatory.
new PolicyPack(PACK_NAME, {
    description: "Production hardening of the AI trading platform (deployment guide, \"Production Considerations\").",
    enforcementLevel: "mandatory",
    policies,
});
