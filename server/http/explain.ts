/**
 * `GET /api/v1/explain?mac=&serial=&uuid=&ip=&manufacturer=&product=`: what would happen to a
 * machine with these facts if it enrolled now — its cluster, which pre-registration or rule
 * approves it and why every other one does not, the role it would get, what it would wait for.
 * Writes nothing. Admin only.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../context.js";
import { ApiError } from "../errors.js";
import { macText, smbiosText, uuidText } from "../identity.js";
import { explainClaims } from "../store/policy.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { validate } from "./middleware/validate.js";

const explainQuery = z
  .object({
    mac: macText.optional(),
    serial: smbiosText.optional(),
    uuid: uuidText.optional(),
    ip: z.ipv4({ error: "ip must be an IPv4 address: the source address the machine's requests come from" }).optional(),
    manufacturer: smbiosText.optional(),
    product: smbiosText.optional(),
  })
  .strict();

/** `/api/v1/explain`, admin only. */
export const explainRoutes = new Hono<AppEnv>().get("/api/v1/explain", adminAuth, validate("query", explainQuery), (c) => {
  const q = c.req.valid("query");
  if (Object.values(q).every((v) => v === undefined || v === "")) {
    throw new ApiError("validation_failed", "give at least one of mac, serial, uuid, ip, manufacturer, product");
  }
  return c.json(
    explainClaims(c.var.deps.db, {
      mac: q.mac,
      serial: q.serial || undefined,
      uuid: q.uuid,
      ip: q.ip,
      manufacturer: q.manufacturer || undefined,
      product: q.product || undefined,
    }),
  );
});
