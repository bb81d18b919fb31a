/**
 * The bodies of an admin's decisions about a machine, shared by the admin API
 * (`POST /api/v1/nodes/:id/{approve,reject,retire,reinstall}`) and the console's forms, so both
 * accept exactly the same values (and /openapi.json documents that one schema).
 */
import { z } from "zod";
import { nodeLabels } from "../../clusters/spec.js";
import { rolePreferences } from "../../lifecycle/machine.js";
import { dnsLabelPattern } from "../../lifecycle/node-name.js";

/** `POST /api/v1/nodes/:id/approve`. */
export const approveBody = z
  .object({
    cluster_id: z.number().int().positive().optional(),
    role: z.enum(rolePreferences).default("auto"),
    hostname: z
      .string()
      .regex(dnsLabelPattern, "hostname must be an RFC 1123 label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit")
      .optional(),
    labels: nodeLabels.optional(),
    dismiss_conflicts: z.boolean().default(false),
  })
  .strict();

/** `POST /api/v1/nodes/:id/{reject,retire,reinstall}`: an optional one-line reason. */
export const reasonBody = z
  .object({
    reason: z
      .string()
      .max(500)
      .regex(/^[^\x00-\x1f\x7f]*$/, "reason must be one line of text")
      .optional(),
  })
  .strict();
