/**
 * Named admin tokens: `GET /api/v1/tokens` (names and dates, never secrets), `POST` (the new
 * token is in this one answer and nowhere else), `DELETE /api/v1/tokens/:name` (refused from the
 * next request on). Admin only; each change is audited under the token that made it.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../context.js";
import { type AdminTokenInfo, createAdminToken, listAdminTokens, revokeAdminToken } from "../store/admin-token.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { limitJsonBody, validate } from "./middleware/validate.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A token's name: short, and safe in an audit actor (`admin:<name>`), a URL and a terminal. */
const tokenName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "name must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit");

const createBody = z.object({ name: tokenName }).strict();
const nameParam = z.object({ name: tokenName });
const listQuery = z
  .object({
    limit: z
      .string()
      .regex(/^[1-9]\d{0,3}$/, "limit must be 1-1000")
      .transform(Number)
      .refine((n) => n <= 1000, "limit must be 1-1000")
      .optional(),
    cursor: tokenName.optional(),
  })
  .strict();

function present(t: AdminTokenInfo) {
  return { name: t.name, created_at: iso(t.createdAt), created_by: t.createdBy, last_used_at: iso(t.lastUsedAt) };
}

/** `/api/v1/tokens` routes, admin only. */
export const tokenRoutes = new Hono<AppEnv>()
  .get("/api/v1/tokens", adminAuth, validate("query", listQuery), (c) => {
    const { limit = 100, cursor } = c.req.valid("query");
    // At most maxAdminTokens rows: paging in memory over the name order is exact and cheap.
    const after = listAdminTokens(c.var.deps.db).filter((t) => cursor === undefined || t.name > cursor);
    const page = after.slice(0, limit);
    return c.json({ tokens: page.map(present), next_cursor: after.length > limit ? page[page.length - 1]!.name : null });
  })
  .post("/api/v1/tokens", limitJsonBody, adminAuth, validate("json", createBody), (c) => {
    const { db, clock } = c.var.deps;
    const made = createAdminToken(db, c.req.valid("json").name, { actor: adminActor(c), sourceIp: c.var.sourceIp || null, now: clock() });
    c.header("cache-control", "no-store");
    return c.json({ ...present(made.info), token: made.token }, 201);
  })
  .delete("/api/v1/tokens/:name", adminAuth, validate("param", nameParam), (c) => {
    const { db, clock } = c.var.deps;
    const { name } = c.req.valid("param");
    revokeAdminToken(db, name, { actor: adminActor(c), sourceIp: c.var.sourceIp || null, now: clock() });
    return c.json({ name, revoked: true });
  });
