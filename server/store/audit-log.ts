/** Reading the audit log for admins: filtered, newest first, one keyset page at a time. */
import { and, desc, eq } from "drizzle-orm";
import type { Queryable } from "../../db/client.js";
import { auditEvents } from "../../db/schema.js";
import { fetchSize, pageOf, pastCursor, type Page, type PageRequest } from "./pagination.js";

/** Which audit records an admin asks for; every filter given must hold. */
export type AuditFilter = { machineId?: number | undefined; clusterId?: number | undefined; action?: string | undefined; actor?: string | undefined };

export type AuditRow = typeof auditEvents.$inferSelect;

/** One page of the audit log, newest first. */
export function listAuditPage(db: Queryable, f: AuditFilter, page: PageRequest): Page<AuditRow> {
  const rows = db
    .select()
    .from(auditEvents)
    .where(
      and(
        f.machineId !== undefined ? eq(auditEvents.machineId, f.machineId) : undefined,
        f.clusterId !== undefined ? eq(auditEvents.clusterId, f.clusterId) : undefined,
        f.action !== undefined ? eq(auditEvents.action, f.action) : undefined,
        f.actor !== undefined ? eq(auditEvents.actor, f.actor) : undefined,
        pastCursor(auditEvents.id, page, "desc"),
      ),
    )
    .orderBy(desc(auditEvents.id))
    .limit(fetchSize(page))
    .all();
  return pageOf(rows, page, (r) => r.id);
}
