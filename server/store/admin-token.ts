/**
 * Named admin bearer tokens. Only each token's SHA-256 is kept. The first start's token is named
 * `initial`; EDGEJOIN_ADMIN_TOKEN, when set, is accepted as `env` and never stored.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { adminTokens } from "../../db/schema.js";
import { refuse } from "../errors.js";
import { recordAudit } from "./audit.js";
import { transact } from "./transaction.js";

/** The name the first start's token (and `tokens reset-initial`) uses. */
export const initialTokenName = "initial";
/** The name EDGEJOIN_ADMIN_TOKEN is audited under; it cannot be created or revoked through the API. */
export const envTokenName = "env";
/** More named tokens than any site needs; bounds the constant-time scan each admin request makes. */
export const maxAdminTokens = 100;
/** `last_used_at` is written at most this often per token, so reads do not each cost a write. */
const lastUsedResolutionMs = 60_000;

/** A stored token as admins see it: never the secret, never the hash. */
export type AdminTokenInfo = { name: string; createdAt: number; createdBy: string; lastUsedAt: number | null };

/** SHA-256 of a presented or configured admin token. */
export function hashAdminToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** A new token: 32 random bytes, base64url (43 characters, above the 24 EDGEJOIN_ADMIN_TOKEN requires). */
export function newAdminToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Whether any named token exists (the first start makes `initial` only when none does). */
export function hasAdminTokens(db: Queryable): boolean {
  return db.select({ name: adminTokens.name }).from(adminTokens).limit(1).get() !== undefined;
}

/**
 * Store the first start's token as `initial`, unless a token exists by now (another process won
 * the race). Called only once every listener is bound, so a start that fails uses nothing up.
 * Returns whether it was stored: only then may the caller show it.
 */
export function storeInitialToken(db: Db, token: string, now: number): boolean {
  return db.transaction(
    (tx) => {
      if (hasAdminTokens(tx)) return false;
      tx.insert(adminTokens)
        .values({ name: initialTokenName, sha256: hashAdminToken(token).toString("hex"), createdAt: now, createdBy: "system" })
        .run();
      recordAudit(tx, { at: now, actor: "system", action: "admin_token.created", detail: { name: initialTokenName } });
      return true;
    },
    { behavior: "immediate" },
  );
}

/**
 * `edgejoin tokens reset-initial`, run on the server's host: replace (or recreate) `initial` with a
 * new token and return it. Other named tokens stay valid.
 */
export function resetInitialToken(db: Db, now: number): string {
  const token = newAdminToken();
  db.transaction(
    (tx) => {
      tx.delete(adminTokens).where(eq(adminTokens.name, initialTokenName)).run();
      tx.insert(adminTokens)
        .values({ name: initialTokenName, sha256: hashAdminToken(token).toString("hex"), createdAt: now, createdBy: "local" })
        .run();
      recordAudit(tx, { at: now, actor: "local", action: "admin_token.reset", detail: { name: initialTokenName } });
    },
    { behavior: "immediate" },
  );
  return token;
}

/**
 * The name of the token whose hash is `presented`, or undefined. Every stored hash (and the
 * configured one) is compared in constant time, with no early exit, so timing tells nothing.
 */
export function findAdminToken(db: Db, presented: Buffer, opts: { envHash: Buffer | undefined; now: number }): string | undefined {
  let found: string | undefined;
  if (opts.envHash !== undefined && timingSafeEqual(presented, opts.envHash)) found = envTokenName;
  const rows = db.select({ name: adminTokens.name, sha256: adminTokens.sha256, lastUsedAt: adminTokens.lastUsedAt }).from(adminTokens).all();
  let foundRow: (typeof rows)[number] | undefined;
  for (const row of rows) {
    const stored = Buffer.from(row.sha256, "hex");
    if (stored.length === presented.length && timingSafeEqual(stored, presented) && found === undefined) {
      found = row.name;
      foundRow = row;
    }
  }
  if (foundRow && (foundRow.lastUsedAt === null || opts.now - foundRow.lastUsedAt >= lastUsedResolutionMs)) {
    db.update(adminTokens).set({ lastUsedAt: opts.now }).where(eq(adminTokens.name, foundRow.name)).run();
  }
  return found;
}

/** Every named token, by name. */
export function listAdminTokens(db: Queryable): AdminTokenInfo[] {
  return db
    .select({ name: adminTokens.name, createdAt: adminTokens.createdAt, createdBy: adminTokens.createdBy, lastUsedAt: adminTokens.lastUsedAt })
    .from(adminTokens)
    .orderBy(asc(adminTokens.name))
    .all();
}

type Actor = { actor: string; sourceIp: string | null; now: number };

/** Make a named token; the secret is returned once and only its hash is kept. */
export function createAdminToken(db: Db, name: string, by: Actor): { token: string; info: AdminTokenInfo } {
  const token = newAdminToken();
  return transact(db, (tx) => {
    if (name === envTokenName) return refuse("conflict", `the name ${envTokenName} is EDGEJOIN_ADMIN_TOKEN's: choose another name`);
    if (tx.select().from(adminTokens).where(eq(adminTokens.name, name)).get()) {
      return refuse("conflict", `a token named ${name} exists: revoke it first or choose another name`);
    }
    if (listAdminTokens(tx).length >= maxAdminTokens) return refuse("conflict", `there are already ${maxAdminTokens} admin tokens: revoke unused ones first`);
    tx.insert(adminTokens)
      .values({ name, sha256: hashAdminToken(token).toString("hex"), createdAt: by.now, createdBy: by.actor })
      .run();
    recordAudit(tx, { at: by.now, actor: by.actor, sourceIp: by.sourceIp, action: "admin_token.created", detail: { name } });
    return { token, info: { name, createdAt: by.now, createdBy: by.actor, lastUsedAt: null } };
  });
}

/** Revoke a named token; the next request carrying it is refused. */
export function revokeAdminToken(db: Db, name: string, by: Actor): void {
  transact(db, (tx) => {
    if (name === envTokenName) {
      return refuse("conflict", "the env token is EDGEJOIN_ADMIN_TOKEN: unset it where the server runs and restart it");
    }
    const gone = tx.delete(adminTokens).where(eq(adminTokens.name, name)).run();
    if (gone.changes === 0) return refuse("not_found", `no admin token named ${name}`);
    recordAudit(tx, { at: by.now, actor: by.actor, sourceIp: by.sourceIp, action: "admin_token.revoked", detail: { name } });
    return undefined;
  });
}
