/**
 * Where the keyring lives between starts: private JWKs in `DATA_DIR/keys/<kid>.json` (mode 0600,
 * only the active key's), public JWKs with created/retired times in the signing_keys table.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq, isNull } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { signingKeys } from "../../db/schema.js";
import {
  activeKeyFromJwk,
  generateSigningKey,
  Keyring,
  verificationKeyFromJwk,
  type ActiveKey,
  type PrivateSigningJwk,
  type VerificationKey,
} from "../enrollment/keyring.js";
import { recordAudit } from "./audit.js";

/** The folder holding private signing keys. */
export function keysDir(dataDir: string): string {
  return join(dataDir, "keys");
}

function privateKeyPath(dataDir: string, kid: string): string {
  // kids are base64url thumbprints (checked on load), so they are safe file names.
  return join(keysDir(dataDir), `${kid}.json`);
}

function writePrivateKey(dataDir: string, jwk: PrivateSigningJwk): void {
  mkdirSync(keysDir(dataDir), { recursive: true, mode: 0o700 });
  const path = privateKeyPath(dataDir, jwk.kid);
  const partial = `${path}.partial`;
  // Created 0600 from the first byte; the rename makes a half-written key impossible to load.
  writeFileSync(partial, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: "w" });
  chmodSync(partial, 0o600);
  renameSync(partial, path);
}

function removePrivateKey(dataDir: string, kid: string): void {
  rmSync(privateKeyPath(dataDir, kid), { force: true });
}

/** What loading found or did, for main to log (this module never logs). */
export type KeyringLoad = {
  keyring: Keyring;
  created: string | undefined;
  /** An active key whose private file was missing or unreadable, retired in favour of a new one. */
  lostPrivateKey: { kid: string; reason: string } | undefined;
  pruned: string[];
};

/**
 * Load the keyring, or make the first key. Retired keys past `maxTokenLifetimeMs` are dropped:
 * nothing they signed can still be valid.
 */
export function loadKeyring(db: Db, opts: { dataDir: string; now: number; maxTokenLifetimeMs: number }): KeyringLoad {
  const rows = db.select().from(signingKeys).all();
  const retired: VerificationKey[] = [];
  let active: ActiveKey | undefined;
  let lostPrivateKey: KeyringLoad["lostPrivateKey"];
  const retireNow: string[] = [];

  const current = rows.filter((r) => r.retiredAt === null).sort((a, b) => b.createdAt - a.createdAt);
  for (const [i, row] of current.entries()) {
    if (i === 0) {
      try {
        const path = privateKeyPath(opts.dataDir, row.kid);
        chmodSync(path, 0o600);
        active = activeKeyFromJwk(JSON.parse(readFileSync(path, "utf8")), row.createdAt);
        if (active.kid !== row.kid) throw new Error("the key file holds another key");
        continue;
      } catch (err) {
        lostPrivateKey = { kid: row.kid, reason: (err as Error).message };
      }
    }
    // A second "active" row (a crash mid-rotation) or one whose private half is gone: verify only.
    retireNow.push(row.kid);
    retired.push(verificationKeyFromJwk(row.publicJwk, row.createdAt, opts.now));
  }
  for (const row of rows) {
    if (row.retiredAt !== null) retired.push(verificationKeyFromJwk(row.publicJwk, row.createdAt, row.retiredAt));
  }

  let created: string | undefined;
  if (!active) {
    const fresh = generateSigningKey(opts.now);
    writePrivateKey(opts.dataDir, fresh.privateJwk);
    active = fresh.key;
    created = active.kid;
  }
  const keyring = new Keyring(active, retired);
  const pruned = keyring.prune(opts.now, opts.maxTokenLifetimeMs);

  db.transaction(
    (tx) => {
      for (const kid of retireNow) tx.update(signingKeys).set({ retiredAt: opts.now }).where(eq(signingKeys.kid, kid)).run();
      if (created) {
        tx.insert(signingKeys).values({ kid: active.kid, publicJwk: active.publicJwk, createdAt: opts.now }).run();
        recordAudit(tx, { at: opts.now, actor: "system", action: "signing_key.created", detail: { kid: active.kid } });
      }
      for (const kid of pruned) tx.delete(signingKeys).where(eq(signingKeys.kid, kid)).run();
    },
    { behavior: "immediate" },
  );
  for (const kid of [...retireNow, ...pruned]) removePrivateKey(opts.dataDir, kid);
  return { keyring, created, lostPrivateKey, pruned };
}

/**
 * Make a new active key; the previous one retires but its public half stays published (and
 * verifying) until every token it signed has expired. Its private half is deleted: it never signs again.
 */
export function rotateSigningKey(
  db: Db,
  keyring: Keyring,
  opts: { dataDir: string; now: number; maxTokenLifetimeMs: number; actor: string; sourceIp?: string },
): { active: string; retired: string; pruned: string[] } {
  const fresh = generateSigningKey(opts.now);
  writePrivateKey(opts.dataDir, fresh.privateJwk);
  const previous = keyring.active;
  db.transaction(
    (tx) => {
      // The previous key may have no row (a ring made in memory by tests); write it so it stays published.
      tx.insert(signingKeys)
        .values({ kid: previous.kid, publicJwk: previous.publicJwk, createdAt: previous.createdAt, retiredAt: opts.now })
        .onConflictDoUpdate({ target: signingKeys.kid, set: { retiredAt: opts.now } })
        .run();
      tx.update(signingKeys).set({ retiredAt: opts.now }).where(isNull(signingKeys.retiredAt)).run();
      tx.insert(signingKeys).values({ kid: fresh.key.kid, publicJwk: fresh.key.publicJwk, createdAt: opts.now }).run();
      recordAudit(tx, {
        at: opts.now,
        actor: opts.actor,
        sourceIp: opts.sourceIp ?? null,
        action: "signing_key.rotated",
        detail: { active: fresh.key.kid, retired: previous.kid },
      });
    },
    { behavior: "immediate" },
  );
  keyring.activate(fresh.key, opts.now);
  removePrivateKey(opts.dataDir, previous.kid);
  const pruned = keyring.prune(opts.now, opts.maxTokenLifetimeMs);
  if (pruned.length > 0) {
    db.transaction((tx) => {
      for (const kid of pruned) tx.delete(signingKeys).where(eq(signingKeys.kid, kid)).run();
    });
  }
  return { active: fresh.key.kid, retired: previous.kid, pruned };
}
