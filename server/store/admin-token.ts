/**
 * The admin bearer token. Only its SHA-256 is ever kept: from EDGEJOIN_ADMIN_TOKEN when set,
 * otherwise made once at first start and stored hashed in the settings table.
 */
import { createHash, randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { settings } from "../../db/schema.js";
import { recordAudit } from "./audit.js";

const settingKey = "admin_token_sha256";

/** SHA-256 of a presented or configured admin token. */
export function hashAdminToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/**
 * The hash admin requests are checked against. `created` is set only on the start that made a
 * new token: the caller shows it once, and it is never stored or logged anywhere.
 */
export function ensureAdminToken(db: Db, opts: { configured: string | undefined; now: number }): { hash: Buffer; created?: string } {
  if (opts.configured) return { hash: hashAdminToken(opts.configured) };
  return db.transaction(
    (tx) => {
      const stored = tx.select().from(settings).where(eq(settings.key, settingKey)).get();
      if (stored) return { hash: Buffer.from(stored.value, "hex") };
      // 32 random bytes, base64url: 43 characters, above the 24 EDGEJOIN_ADMIN_TOKEN requires.
      const created = randomBytes(32).toString("base64url");
      const hash = hashAdminToken(created);
      tx.insert(settings)
        .values({ key: settingKey, value: hash.toString("hex") })
        .run();
      recordAudit(tx, { at: opts.now, actor: "system", action: "admin_token.created" });
      return { hash, created };
    },
    { behavior: "immediate" },
  );
}
