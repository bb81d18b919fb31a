/**
 * Selection for boot requests: parse the identity iPXE sent, record the sighting (what it
 * reported; never applied to an approved identity), and put the machine in the context. Handlers after it only render. A query that does not parse becomes a
 * console message for the machine and stores nothing.
 */
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import type { AppEnv } from "../../context.js";
import { ipxeWord, macText, smbiosText, uuidText } from "../../identity.js";
import { recordSighting } from "../../store/machines.js";

/** Longer than any identity iPXE can send; anything past it is garbage or an attack. */
export const maxBootQueryLength = 1024;

const bootQuery = z
  .object({
    mac: macText,
    uuid: z.union([z.literal(""), uuidText]).optional(),
    serial: smbiosText.optional(),
    manufacturer: smbiosText.optional(),
    product: smbiosText.optional(),
    arch: z.union([z.literal(""), ipxeWord]).optional(),
    platform: z.union([z.literal(""), ipxeWord]).optional(),
  })
  .strict();

/** Why a boot query was refused, in words safe to print on an iPXE console. */
export class BootQueryError extends Error {}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `unknown parameter ${issue.keys.map((k) => k.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 32)).join(", ")}`;
  const field = String(issue.path[0] ?? "query");
  if (field === "mac") return "mac must be six hex bytes, e.g. 52:54:00:12:34:56";
  return `${field} is not valid (${issue.message.replace(/[^A-Za-z0-9 .,:()'/_-]/g, "")})`;
}

/** Puts `machine` in the context, or throws BootQueryError for a bad identity. */
export const selectMachine = createMiddleware<AppEnv>(async (c, next) => {
  const rawQuery = new URL(c.req.url).search.slice(1);
  if (rawQuery.length > maxBootQueryLength) throw new BootQueryError(`the query string is longer than ${maxBootQueryLength} characters`);
  const params = new URLSearchParams(rawQuery);
  const query: Record<string, string> = {};
  for (const [k, v] of params) {
    if (k in query) throw new BootQueryError(`parameter ${k.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 32)} given twice`);
    query[k] = v;
  }
  const parsed = bootQuery.safeParse(query);
  if (!parsed.success) throw new BootQueryError(describe(parsed.error.issues[0]!));
  const { db, clock, limits } = c.get("deps");
  const ip = c.get("sourceIp");
  const { machine } = recordSighting(
    db,
    parsed.data,
    { ip, now: clock(), via: "boot.ipxe" },
    { mayCreate: () => limits.mayCreateMachine(ip), mayAudit: (id) => limits.mayAuditRefusal(ip, id) },
  );
  c.set("machine", machine);
  await next();
});
