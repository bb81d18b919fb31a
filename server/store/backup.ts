/** A consistent copy of the live database, made while it keeps serving. */
import type { Db } from "../../db/client.js";
import { recordAudit } from "./audit.js";

/**
 * Copy the database to `file` with SQLite's online backup API (better-sqlite3's `backup()`): it
 * copies pages in steps between which other requests keep reading and writing, and restarts
 * over what changed, so the copy is one consistent moment. Audited once it is complete.
 */
export async function backupDatabase(db: Db, file: string, by: { actor: string; sourceIp: string | null; now: () => number }): Promise<{ pages: number }> {
  const result = await db.$client.backup(file);
  recordAudit(db, { at: by.now(), actor: by.actor, sourceIp: by.sourceIp, action: "database.backup", detail: { pages: result.totalPages } });
  return { pages: result.totalPages };
}
