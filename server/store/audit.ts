/** The audit log: every state change, who made it, from where. */
import { desc, eq } from "drizzle-orm";
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
