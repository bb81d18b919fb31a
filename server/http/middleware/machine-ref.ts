/**
 * Admin routes name a machine by whatever the admin has at hand: its id, its MAC (any common
 * spelling) or the serial on its sticker. `machineRefParam` validates the path segment;
 * `machineFromRef` finds the one machine it names or answers 404 (409 when a serial names two).
 */
import { z } from "zod";
import type { MachineRow } from "../../context.js";
import type { Queryable } from "../../../db/client.js";
import { findMachineByRef } from "../../store/inventory.js";
import { Refusal } from "../../errors.js";

/** `/:id` of a machine route: an id, a MAC or a serial (printable ASCII, as SMBIOS allows). */
export const machineRefParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64, "a machine is named by its id, MAC or serial (at most 64 characters)")
    .regex(/^[\x21-\x7e]+$/, "a machine is named by its id, MAC or serial (printable characters, no spaces)"),
});

/** The machine `ref` names; throws the API error when none (or more than one) does. */
export function machineFromRef(db: Queryable, ref: string): MachineRow {
  const found = findMachineByRef(db, ref);
  if (found instanceof Refusal) throw found.toError();
  return found;
}
