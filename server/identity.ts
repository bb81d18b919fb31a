/**
 * Normalizing what machines say about themselves, once, at the edge. Pure: no framework.
 * Anything that does not parse is refused rather than repaired.
 */
import { z } from "zod";

/**
 * Any common MAC spelling → lower-case colon form, or undefined.
 * Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` (iPXE `:hexhyp`), `aabb.ccdd.eeff`, `aabbccddeeff`.
 */
export function parseMac(input: string): string | undefined {
  const s = input.trim();
  const grouped = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(s);
  let hex: string | undefined;
  if (grouped) hex = [1, 3, 4, 5, 6, 7].map((i) => grouped[i]).join("");
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(s)) hex = s.replaceAll(".", "");
  else if (/^[0-9a-f]{12}$/i.test(s)) hex = s;
  if (!hex) return undefined;
  return hex.toLowerCase().match(/../g)!.join(":");
}

/** SMBIOS UUID in its usual 8-4-4-4-12 form, lower-cased. */
export const uuidText = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "uuid must be 8-4-4-4-12 hex")
  .transform((v) => v.toLowerCase());

/**
 * SMBIOS free text (serial, manufacturer, product): printable ASCII, at most 64 characters.
 * Stored and shown to admins, never rendered into a script; control characters and iPXE's `${`
 * are refused all the same so nothing downstream has to think about them.
 */
export const smbiosText = z
  .string()
  .max(64, "at most 64 characters")
  .regex(/^[\x20-\x7e]*$/, "printable ASCII only")
  .refine((v) => !v.includes("${"), "must not contain ${")
  .transform((v) => v.trim());

/** iPXE's `${buildarch}` / `${platform}` words. */
export const ipxeWord = z.string().regex(/^[a-z0-9_]{1,16}$/, "a short lower-case word");

export const macText = z
  .string()
  .max(32)
  .transform((v, ctx) => {
    const mac = parseMac(v);
    if (!mac) {
      ctx.addIssue({ code: "custom", message: "mac must be six hex bytes, e.g. 52:54:00:12:34:56" });
      return z.NEVER;
    }
    return mac;
  });
