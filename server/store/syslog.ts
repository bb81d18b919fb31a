/**
 * Syslog lines filed under machines. A line belongs to the machine last seen at its source
 * address; each insert trims that machine to its newest `perMachine` lines and the table to
 * `total`, so a chatty or hostile sender can never grow the database without bound.
 */
import { and, asc, desc, eq, gte, lte, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, syslogMessages, type SyslogRow } from "../../db/schema.js";
import { fetchSize, pageOf, pastCursor, type Page, type PageRequest } from "./pagination.js";
import { transact } from "./transaction.js";

/** How many lines are kept: the newest per machine, and in all. */
export type SyslogCaps = { perMachine: number; total: number };

/** Enough for a whole install's log at INFO; the oldest lines go first. */
export const defaultSyslogCaps: SyslogCaps = { perMachine: 2_000, total: 200_000 };

/** One line as the receiver parsed it. */
export type SyslogLine = {
  facility: number;
  severity: number;
  timestamp: string | null;
  hostname: string | null;
  app: string | null;
  message: string;
};

/**
 * File one line under the machine last seen at `sourceIp` (the most recently seen, when a lease
 * moved); the machine's id, or undefined when no machine is known at that address (nothing stored).
 */
export function fileSyslog(db: Db, o: { sourceIp: string; line: SyslogLine; now: number }, caps: SyslogCaps = defaultSyslogCaps): number | undefined {
  return transact(db, (tx) => {
    const m = tx.select({ id: machines.id }).from(machines).where(eq(machines.lastIp, o.sourceIp)).orderBy(desc(machines.lastSeenAt)).limit(1).get();
    if (!m) return undefined;
    tx.insert(syslogMessages)
      .values({
        machineId: m.id,
        receivedAt: o.now,
        sourceIp: o.sourceIp,
        facility: o.line.facility,
        severity: o.line.severity,
        sentAt: o.line.timestamp,
        hostname: o.line.hostname,
        app: o.line.app,
        message: o.line.message,
      })
      .run();
    // Keyset trims: the id of the oldest line still kept, by index, then one range delete.
    const keepFrom = tx
      .select({ id: syslogMessages.id })
      .from(syslogMessages)
      .where(eq(syslogMessages.machineId, m.id))
      .orderBy(desc(syslogMessages.id))
      .limit(1)
      .offset(caps.perMachine - 1)
      .get();
    if (keepFrom)
      tx.delete(syslogMessages)
        .where(and(eq(syslogMessages.machineId, m.id), sql`${syslogMessages.id} < ${keepFrom.id}`))
        .run();
    const keepAllFrom = tx
      .select({ id: syslogMessages.id })
      .from(syslogMessages)
      .orderBy(desc(syslogMessages.id))
      .limit(1)
      .offset(caps.total - 1)
      .get();
    if (keepAllFrom) tx.delete(syslogMessages).where(sql`${syslogMessages.id} < ${keepAllFrom.id}`).run();
    return m.id;
  });
}

/** What a reader asks for: a page (oldest first, after a cursor id) and optionally a time window (received_at, ms). */
export type SyslogQuery = PageRequest & { since?: number | undefined; until?: number | undefined };

/** A machine's syslog lines, oldest first, one page; for the API and the machine's timeline. */
export function listSyslog(db: Queryable, machineId: number, q: SyslogQuery): Page<SyslogRow> {
  const rows = db
    .select()
    .from(syslogMessages)
    .where(
      and(
        eq(syslogMessages.machineId, machineId),
        pastCursor(syslogMessages.id, q, "asc"),
        q.since === undefined ? undefined : gte(syslogMessages.receivedAt, q.since),
        q.until === undefined ? undefined : lte(syslogMessages.receivedAt, q.until),
      ),
    )
    .orderBy(asc(syslogMessages.id))
    .limit(fetchSize(q))
    .all();
  return pageOf(rows, q, (r) => r.id);
}
