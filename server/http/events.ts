/** `GET /api/v1/events`: the audit log, newest first, filterable by machine, cluster, action and actor. Admin only. */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../context.js";
import { listAuditPage, type AuditRow } from "../store/audit-log.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { pageBody, pagedQuery, pageRequest } from "./middleware/pagination.js";
import { validate } from "./middleware/validate.js";

const id = (what: string) =>
  z
    .string()
    .regex(/^[1-9]\d{0,14}$/, `${what} must be a positive integer`)
    .transform(Number);

const eventsQuery = pagedQuery({
  machine_id: id("machine_id").optional(),
  cluster_id: id("cluster_id").optional(),
  action: z
    .string()
    .regex(/^[a-z_]+\.[a-z_]+$/, "action looks like machine.approved")
    .optional(),
  actor: z
    .string()
    .regex(/^[A-Za-z0-9:._-]{1,128}$/, "actor looks like admin:ops, rule:site-a, machine:12, system or anonymous")
    .optional(),
});

/** An audit record as admins and scripts see it. */
export function auditView(a: AuditRow) {
  return {
    id: a.id,
    at: new Date(a.at).toISOString(),
    actor: a.actor,
    source_ip: a.sourceIp,
    action: a.action,
    machine_id: a.machineId,
    cluster_id: a.clusterId,
    detail: a.detail,
  };
}

/** `/api/v1/events`, admin only. */
export const eventRoutes = new Hono<AppEnv>().get("/api/v1/events", adminAuth, validate("query", eventsQuery), (c) => {
  const q = c.req.valid("query");
  const page = listAuditPage(c.var.deps.db, { machineId: q.machine_id, clusterId: q.cluster_id, action: q.action, actor: q.actor }, pageRequest(q));
  return c.json(pageBody("events", page, auditView));
});
