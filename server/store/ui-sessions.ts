/**
 * Console sessions. The cookie carries a random 32-byte id; only its SHA-256 is stored, so the
 * database alone signs nobody in. A session lives a fixed time from sign-in and ends at sign-out,
 * when its token is revoked, or when it expires.
 */
import { createHash, randomBytes } from "node:crypto";
import { eq, lte } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { adminTokens, uiSessions } from "../../db/schema.js";
import { recordAudit } from "./audit.js";
import { envTokenName } from "./admin-token.js";

/** A live session as the console sees it. */
export type UiSession = { tokenName: string; csrfToken: string; expiresAt: number };

const hashId = (id: string) => createHash("sha256").update(id, "utf8").digest("hex");

/** Open a session for the admin token `tokenName`; returns the cookie's id (shown only now). */
export function openUiSession(db: Db, o: { tokenName: string; now: number; lifetimeMs: number; sourceIp: string | null }): { id: string; session: UiSession } {
  const id = randomBytes(32).toString("base64url");
  const session = { tokenName: o.tokenName, csrfToken: randomBytes(32).toString("base64url"), expiresAt: o.now + o.lifetimeMs };
  db.transaction(
    (tx) => {
      // Expired rows go on each sign-in, so the table never grows past the live sessions.
      tx.delete(uiSessions).where(lte(uiSessions.expiresAt, o.now)).run();
      tx.insert(uiSessions)
        .values({ idSha256: hashId(id), tokenName: o.tokenName, csrfToken: session.csrfToken, createdAt: o.now, expiresAt: session.expiresAt })
        .run();
      recordAudit(tx, { at: o.now, actor: `admin:${o.tokenName}`, sourceIp: o.sourceIp, action: "admin.signed_in", detail: { via: "console" } });
    },
    { behavior: "immediate" },
  );
  return { id, session };
}

/**
 * The live session behind a cookie id, or undefined: unknown, expired, or its admin token was
 * revoked since (the `env` token counts as long as EDGEJOIN_ADMIN_TOKEN is set).
 */
export function findUiSession(db: Db, id: string, o: { now: number; envTokenSet: boolean }): UiSession | undefined {
  const row = db
    .select()
    .from(uiSessions)
    .where(eq(uiSessions.idSha256, hashId(id)))
    .get();
  if (!row || row.expiresAt <= o.now) return undefined;
  const tokenLive =
    row.tokenName === envTokenName
      ? o.envTokenSet
      : db.select({ n: adminTokens.name }).from(adminTokens).where(eq(adminTokens.name, row.tokenName)).get() !== undefined;
  if (!tokenLive) return undefined;
  return { tokenName: row.tokenName, csrfToken: row.csrfToken, expiresAt: row.expiresAt };
}

/** End a session (sign-out). */
export function closeUiSession(db: Db, id: string, o: { now: number; sourceIp: string | null }): void {
  db.transaction(
    (tx) => {
      const row = tx
        .select()
        .from(uiSessions)
        .where(eq(uiSessions.idSha256, hashId(id)))
        .get();
      if (!row) return;
      tx.delete(uiSessions).where(eq(uiSessions.idSha256, row.idSha256)).run();
      recordAudit(tx, { at: o.now, actor: `admin:${row.tokenName}`, sourceIp: o.sourceIp, action: "admin.signed_out", detail: { via: "console" } });
    },
    { behavior: "immediate" },
  );
}

/** A refused console sign-in, for the audit log (and so the log): never what was typed. */
export function recordFailedSignIn(db: Db, o: { now: number; sourceIp: string | null }): void {
  recordAudit(db, { at: o.now, actor: "anonymous", sourceIp: o.sourceIp, action: "admin.sign_in_failed", detail: { via: "console" } });
}
