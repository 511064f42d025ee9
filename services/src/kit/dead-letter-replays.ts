/**
 * What every dead-letter replay route shares (notification-service's deliveries, database-service's
 * Kafka consumers' letters): the `:id` (a bigserial; 18 digits at most stays within bigint, so no id a
 * client sends reaches PostgreSQL as an out-of-range error) and the 409 of a letter replayed before,
 * naming `id`: a letter replays once.
 */
import { Type } from "@sinclair/typebox";
import { HttpError } from "./errors";
import { ResponseObject } from "./openapi";

export const DeadLetterIdParams = Type.Object({ id: Type.String({ pattern: "^[0-9]{1,18}$", description: "the dead letter's id" }) });

export const alreadyReplayed = (id: string, when?: string) => new HttpError(409, "ALREADY_REPLAYED", `dead letter ${id} was already replayed${when ? ` (${when})` : ""}`, "id");

/** A replay's 200: the id, `replayed`, and what the route adds. */
export const ReplayedAnswer = ResponseObject({ id: Type.String(), status: Type.String({ description: "replayed" }) });
