/**
 * Console sign-in and the two checks every console request passes: a live session (cookie
 * `HttpOnly`, `SameSite=Strict`, `Secure` over HTTPS, with an expiry; only the id's hash is
 * stored) and, on every state-changing request, the session's CSRF token (synchronizer token,
 * compared in constant time). Sign-in itself is protected by a double-submit token, so a
 * foreign page cannot sign a browser into an attacker's session.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { ApiError } from "../../errors.js";
import { findAdminToken, hashAdminToken } from "../../store/admin-token.js";
import { closeUiSession, findUiSession, openUiSession, recordFailedSignIn, type UiSession } from "../../store/ui-sessions.js";

/** The console's context: the app's, plus the signed-in session. */
export type UiEnv = { Variables: AppEnv["Variables"] & { session: UiSession } };

/** How long a sign-in lasts: a working day, then the token is asked for again. */
export const sessionLifetimeMs = 12 * 60 * 60 * 1000;
const sessionCookie = "edgejoin_session";
const signInCookie = "edgejoin_signin";

const isHttps = (c: Context) => new URL(c.req.url).protocol === "https:";

function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A fresh double-submit token for the sign-in form, also set as a short-lived cookie. */
export function signInToken(c: Context): string {
  const token = randomBytes(24).toString("base64url");
  setCookie(c, signInCookie, token, { httpOnly: true, sameSite: "Strict", secure: isHttps(c), path: "/ui", maxAge: 3600 });
  return token;
}

/** Check a sign-in post; on success open a session and set its cookie. Returns the token name, or undefined when refused. */
export function signIn(c: Context<UiEnv>, form: { token: string; csrf: string | undefined }): string | undefined {
  const { db, adminTokenHash, clock } = c.var.deps;
  if (!sameSecret(form.csrf, getCookie(c, signInCookie) ?? "")) throw new ApiError("forbidden", "the sign-in form is stale: reload the page and sign in again");
  const name = findAdminToken(db, hashAdminToken(form.token), { envHash: adminTokenHash, now: clock() });
  if (name === undefined) {
    recordFailedSignIn(db, { now: clock(), sourceIp: c.var.sourceIp || null });
    return undefined;
  }
  const { id } = openUiSession(db, { tokenName: name, now: clock(), lifetimeMs: sessionLifetimeMs, sourceIp: c.var.sourceIp || null });
  deleteCookie(c, signInCookie, { path: "/ui" });
  setCookie(c, sessionCookie, id, { httpOnly: true, sameSite: "Strict", secure: isHttps(c), path: "/", maxAge: sessionLifetimeMs / 1000 });
  return name;
}

/** End the session behind the cookie and drop the cookie. */
export function signOut(c: Context<UiEnv>): void {
  const id = getCookie(c, sessionCookie);
  if (id) closeUiSession(c.var.deps.db, id, { now: c.var.deps.clock(), sourceIp: c.var.sourceIp || null });
  deleteCookie(c, sessionCookie, { path: "/" });
}

/**
 * Pages need a live session (a browser without one is sent to sign in); a POST also needs the
 * session's CSRF token, in the `_csrf` form field or the `x-csrf-token` header.
 */
export const requireSession = createMiddleware<UiEnv>(async (c, next) => {
  const { db, clock, adminTokenHash } = c.var.deps;
  const id = getCookie(c, sessionCookie);
  const session = id ? findUiSession(db, id, { now: clock(), envTokenSet: adminTokenHash !== undefined }) : undefined;
  if (!session) {
    if (c.req.method === "GET" && c.req.header("x-live") === undefined) return c.redirect("/ui/login", 303);
    throw new ApiError("unauthorized", "sign in to the console first");
  }
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    const body = await c.req.parseBody({ all: true });
    const field = body._csrf;
    const sent = typeof field === "string" ? field : c.req.header("x-csrf-token");
    if (!sameSecret(sent, session.csrfToken)) throw new ApiError("forbidden", "this form lacks its CSRF token (or it is stale): reload the page and try again");
  }
  c.set("session", session);
  // adminActor() reads this: the session acts, and is audited, as the token it signed in with.
  c.set("adminToken", session.tokenName);
  await next();
});
