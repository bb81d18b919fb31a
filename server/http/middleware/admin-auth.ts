/**
 * Admin routes need `Authorization: Bearer <admin token>`: a named token (`/api/v1/tokens`, the
 * first start's `initial`) or EDGEJOIN_ADMIN_TOKEN (named `env`). The presented token is hashed
 * with SHA-256 and compared in constant time with every stored hash. The token's name goes into
 * the context, so every admin decision is audited as `admin:<token name>`.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { ApiError } from "../../errors.js";
import { findAdminToken, hashAdminToken } from "../../store/admin-token.js";

/** Who an admin request is audited as: `admin:<token name>`. */
export function adminActor(c: Context<AppEnv>): string {
  return `admin:${c.var.adminToken}`;
}

/** Let the request through only with a live admin token; sets `adminToken` to its name. */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const { db, adminTokenHash, clock } = c.var.deps;
  const match = /^Bearer\s+(\S{1,1024})\s*$/i.exec(c.req.header("authorization") ?? "");
  // Hash and compare even when nothing usable was sent, so timing says nothing about why.
  const name = findAdminToken(db, hashAdminToken(match?.[1] ?? ""), { envHash: adminTokenHash, now: clock() });
  if (!match || name === undefined) {
    c.header("www-authenticate", 'Bearer realm="edgejoin admin"');
    throw new ApiError("unauthorized", "this needs an admin token: send Authorization: Bearer <token> (EDGEJOIN_ADMIN_TOKEN for the CLI)");
  }
  c.set("adminToken", name);
  await next();
});
