/**
 * Admin routes need `Authorization: Bearer <admin token>`. Both sides are hashed with SHA-256
 * first, so the comparison is constant-time and of equal length whatever was sent.
 */
import { timingSafeEqual } from "node:crypto";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { ApiError } from "../../errors.js";
import { hashAdminToken } from "../../store/admin-token.js";

/** The actor name admin decisions are audited under (there is one admin token, not users). */
export const adminActor = "admin";

/** Let the request through only with the admin bearer token. */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.var.deps.adminTokenHash;
  const match = /^Bearer\s+(\S{1,1024})\s*$/i.exec(c.req.header("authorization") ?? "");
  const presented = hashAdminToken(match?.[1] ?? "");
  // Hash and compare even when nothing usable was sent, so timing says nothing about why.
  const equal = expected !== undefined && timingSafeEqual(presented, expected);
  if (!match || !equal) {
    c.header("www-authenticate", 'Bearer realm="edgejoin admin"');
    throw new ApiError("unauthorized", "this needs the admin token: send Authorization: Bearer <EDGEJOIN_ADMIN_TOKEN>");
  }
  await next();
});
