/** The audit log: every state change, who made it, from where. */
import { asc, desc, eq, gt, sql } from "drizzle-orm";
import type { Queryable } from "../../db/client.js";
import { auditEvents } from "../../db/schema.js";
import { connectionOf, prepared } from "./prepared.js";

export type AuditEntry = {
  at: number;
  actor: string;
  sourceIp?: string | null;
  action: string;
  machineId?: number | null;
  clusterId?: number | null;
  detail?: Record<string, unknown> | null;
};

/** Audit records this process has written (or tried to), per connection: the log follower reads only when it moved. */
const written = new WeakMap<object, number>();

/** How many audit records this process has written on `db`'s connection; a change means `auditSince` has news. */
export function auditWrites(db: Queryable): number {
  return written.get(connectionOf(db)) ?? 0;
}

/** Append one audit record; call inside the transaction that made the change. */
export function recordAudit(db: Queryable, entry: AuditEntry): void {
  const connection = connectionOf(db);
  written.set(connection, (written.get(connection) ?? 0) + 1);
  prepared(db, insertAudit).run({
    at: entry.at,
    actor: entry.actor,
    sourceIp: entry.sourceIp ?? null,
    action: entry.action,
    machineId: entry.machineId ?? null,
    clusterId: entry.clusterId ?? null,
    // Encoded here: the column's encoder would store a missing detail as the text `null`, not NULL.
    detail: entry.detail == null ? null : JSON.stringify(entry.detail),
  });
}

// Every decision writes one: prepared once.
const insertAudit = (q: Queryable) =>
  q
    .insert(auditEvents)
    .values({
      at: sql.placeholder("at"),
      actor: sql.placeholder("actor"),
      sourceIp: sql.placeholder("sourceIp"),
      action: sql.placeholder("action"),
      machineId: sql.placeholder("machineId"),
      clusterId: sql.placeholder("clusterId"),
      detail: sql`${sql.placeholder("detail")}`,
    })
    .prepare();

/** Newest first, optionally for one machine. */
export function listAudit(db: Queryable, opts: { machineId?: number; limit?: number } = {}) {
  const q = db.select().from(auditEvents);
  const filtered = opts.machineId === undefined ? q : q.where(eq(auditEvents.machineId, opts.machineId));
  return filtered
    .orderBy(desc(auditEvents.id))
    .limit(opts.limit ?? 200)
    .all();
}

/** Audit records after `afterId`, oldest first (the log follower's read). */
const since = (q: Queryable) =>
  q
    .select()
    .from(auditEvents)
    .where(gt(auditEvents.id, sql.placeholder("afterId")))
    .orderBy(asc(auditEvents.id))
    .limit(sql.placeholder("limit"))
    .prepare();

export function auditSince(db: Queryable, afterId: number, limit = 500) {
  // Asked after every request (the audit log follower): prepared once.
  return prepared(db, since).all({ afterId, limit });
}

/** The newest audit id, 0 when there is none. */
export function lastAuditId(db: Queryable): number {
  return db.select({ id: auditEvents.id }).from(auditEvents).orderBy(desc(auditEvents.id)).limit(1).get()?.id ?? 0;
}
