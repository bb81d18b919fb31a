/**
 * `/api/v1/machines`: pre-registered machines. One is named by MAC, serial or SMBIOS UUID and is
 * approved the moment it enrolls (`approved_by: machine:<id>`). Admin only.
 */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import type { PreRegistrationRow } from "../../db/schema.js";
import { preRegistrationCreate } from "../policy/spec.js";
import { createPreRegistration, deletePreRegistration, listPreRegistrations } from "../store/policy.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { pageBody, pagedQuery, pageRequest } from "./middleware/pagination.js";
import { idParam, limitJsonBody, validate } from "./middleware/validate.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A pre-registration as admins and scripts see it. */
function present(p: PreRegistrationRow) {
  return {
    id: p.id,
    mac: p.mac,
    serial: p.serial,
    uuid: p.uuid,
    cluster_id: p.clusterId,
    hostname: p.hostname,
    labels: p.labels,
    role: p.role,
    // The machine it approved: it approves no other one after that.
    machine_id: p.machineId,
    used_at: iso(p.usedAt),
    created_at: iso(p.createdAt),
  };
}

/** `/api/v1/machines` routes, admin only. */
export const machineRoutes = new Hono<AppEnv>()
  .get("/api/v1/machines", adminAuth, validate("query", pagedQuery({})), (c) => {
    return c.json(pageBody("machines", listPreRegistrations(c.var.deps.db, pageRequest(c.req.valid("query"))), present));
  })
  .post("/api/v1/machines", limitJsonBody, adminAuth, validate("json", preRegistrationCreate), (c) => {
    const row = createPreRegistration(c.var.deps.db, c.req.valid("json"), { actor: adminActor(c), sourceIp: c.var.sourceIp, now: c.var.deps.clock() });
    return c.json(present(row), 201);
  })
  .delete("/api/v1/machines/:id", adminAuth, validate("param", idParam), (c) => {
    const row = deletePreRegistration(c.var.deps.db, c.req.valid("param").id, { actor: adminActor(c), sourceIp: c.var.sourceIp, now: c.var.deps.clock() });
    return c.json(present(row));
  });
