/** The audit log: every state change, who made it, from where. */
import { asc, desc, eq, gt } from "drizzle-orm";
import type { Queryable } from "../../db/client.js";
import { auditEvents } from "../../db/schema.js";

export type AuditEntry = {
  at: number;
  actor: string;
  sourceIp?: string | null;
  action: string;
  machineId?: number | null;
  clusterId?: number | null;
  detail?: Record<string, unknown> | null;
};

/** Append one audit record; call inside the transaction that made the change. */
export function recordAudit(db: Queryable, entry: AuditEntry): void {
  db.insert(auditEvents)
    .values({
      at: entry.at,
      actor: entry.actor,
      sourceIp: entry.sourceIp ?? null,
      action: entry.action,
      machineId: entry.machineId ?? null,
      clusterId: entry.clusterId ?? null,
      detail: entry.detail ?? null,
    })
    .run();
}

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
export function auditSince(db: Queryable, afterId: number, limit = 500) {
  return db.select().from(auditEvents).where(gt(auditEvents.id, afterId)).orderBy(asc(auditEvents.id)).limit(limit).all();
}

/** The newest audit id, 0 when there is none. */
export function lastAuditId(db: Queryable): number {
  return db.select({ id: auditEvents.id }).from(auditEvents).orderBy(desc(auditEvents.id)).limit(1).get()?.id ?? 0;
}
