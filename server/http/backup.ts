/**
 * `POST /api/v1/backup` (admin): the whole database as one SQLite file, made with SQLite's online
 * backup while edgejoin keeps serving. `edgejoin backup FILE` writes it; the README says how to
 * restore.
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { backupDatabase } from "../store/backup.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";

/** `/api/v1/backup`, admin only. */
export const backupRoutes = new Hono<AppEnv>().post("/api/v1/backup", adminAuth, async (c) => {
  const { db, clock, logger } = c.var.deps;
  // mkdtemp makes the folder 0700: the copy holds the k3s secrets like the database itself.
  const dir = mkdtempSync(join(tmpdir(), "edgejoin-backup-"));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const file = join(dir, "edgejoin.db");
  try {
    const { pages } = await backupDatabase(db, file, { actor: adminActor(c), sourceIp: c.var.sourceIp || null, now: clock });
    const size = statSync(file).size;
    logger.info({ pages, bytes: size }, "database backup made");
    const stream = createReadStream(file);
    // The file goes once it is sent, or once the client went away.
    stream.once("close", remove);
    return c.body(Readable.toWeb(stream) as ReadableStream, 200, {
      "content-type": "application/vnd.sqlite3",
      "content-length": String(size),
      "content-disposition": 'attachment; filename="edgejoin.db"',
      "cache-control": "no-store",
    });
  } catch (err) {
    remove();
    throw err;
  }
});
