/**
 * How a card is named between the business services: by its processor token (`pm_...`, made by
 * the processor's client library in the user's browser), never by its number. payment-service saves
 * and charges it; billing-service takes one for a subscription.
 */
import { Type } from "../kit";

/** A card's processor token, as every route that takes one accepts it. */
export const PaymentMethodId = Type.String({ pattern: "^pm_[A-Za-z0-9_]{1,128}$" });
