/**
 * The admin's inventory and decisions, behind the admin token: list and inspect machines, see
 * their progress, approve or reject them, rotate the signing key.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv, MachineRow } from "../context.js";
import { ApiError } from "../errors.js";
import { machineStates, rolePreferences } from "../lifecycle/machine.js";
import { nodeLabels } from "../clusters/spec.js";
import { dnsLabelPattern } from "../lifecycle/node-name.js";
import { listAudit } from "../store/audit.js";
import { rotateSigningKey } from "../store/keys.js";
import { approveMachine, rejectMachine, retireMachine } from "../store/decisions.js";
import { getMachine, listMachines, listNodeEvents } from "../store/machines.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { idParam, limitJsonBody, validate } from "./middleware/validate.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A machine as admins and scripts see it (snake_case; secrets and internal counters left out). */
function nodeView(m: MachineRow) {
  return {
    id: m.id,
    mac: m.mac,
    uuid: m.uuid,
    serial: m.serial,
    manufacturer: m.manufacturer,
    product: m.product,
    arch: m.arch,
    platform: m.platform,
    state: m.state,
    role: m.role,
    role_preference: m.rolePreference,
    cluster_id: m.clusterId,
    hostname: m.hostname,
    labels: m.labels,
    facts: m.facts,
    last_ip: m.lastIp,
    split_brain_risk: m.splitBrainRisk,
    first_seen_at: iso(m.firstSeenAt),
    last_seen_at: iso(m.lastSeenAt),
    state_changed_at: iso(m.stateChangedAt),
    role_assigned_at: iso(m.roleAssignedAt),
    k3s_started_at: iso(m.k3sStartedAt),
    ready_at: iso(m.readyAt),
  };
}

const listQuery = z
  .object({
    state: z.enum(machineStates).optional(),
    cluster_id: z
      .string()
      .regex(/^[1-9]\d{0,14}$/, "cluster_id must be a cluster id")
      .transform(Number)
      .optional(),
  })
  .strict();

const approveBody = z
  .object({
    cluster_id: z.number().int().positive().optional(),
    role: z.enum(rolePreferences).default("auto"),
    hostname: z
      .string()
      .regex(dnsLabelPattern, "hostname must be an RFC 1123 label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit")
      .optional(),
    labels: nodeLabels.optional(),
  })
  .strict();

const rejectBody = z
  .object({
    reason: z
      .string()
      .max(500)
      .regex(/^[^\x00-\x1f\x7f]*$/, "reason must be one line of text")
      .optional(),
  })
  .strict();

function mustGetMachine(c: { var: AppEnv["Variables"] }, id: number): MachineRow {
  const m = getMachine(c.var.deps.db, id);
  if (!m) throw new ApiError("not_found", `no machine with id ${id}`);
  return m;
}

export const adminRoutes = new Hono<AppEnv>()
  .get("/api/v1/nodes", adminAuth, validate("query", listQuery), (c) => {
    const q = c.req.valid("query");
    return c.json({ nodes: listMachines(c.var.deps.db, { state: q.state, clusterId: q.cluster_id }).map(nodeView) });
  })
  .get("/api/v1/nodes/:id", adminAuth, validate("param", idParam), (c) => {
    return c.json(nodeView(mustGetMachine(c, c.req.valid("param").id)));
  })
  .get("/api/v1/nodes/:id/events", adminAuth, validate("param", idParam), (c) => {
    const m = mustGetMachine(c, c.req.valid("param").id);
    const { db } = c.var.deps;
    return c.json({
      // What the machine reported, and what happened to it (enrolls, refusals such as identity conflicts, decisions).
      events: listNodeEvents(db, m.id).map((e) => ({ id: e.id, at: iso(e.at), source: e.source, type: e.type, detail: e.detail, ca_hash: e.caHash })),
      audit: listAudit(db, { machineId: m.id }).map((a) => ({
        id: a.id,
        at: iso(a.at),
        actor: a.actor,
        source_ip: a.sourceIp,
        action: a.action,
        detail: a.detail,
      })),
    });
  })
  .post("/api/v1/nodes/:id/approve", limitJsonBody, adminAuth, validate("param", idParam), validate("json", approveBody), (c) => {
    const body = c.req.valid("json");
    const { db, clock } = c.var.deps;
    const machine = approveMachine(
      db,
      c.req.valid("param").id,
      { clusterId: body.cluster_id, role: body.role, hostname: body.hostname, labels: body.labels },
      { actor: adminActor(c), sourceIp: c.var.sourceIp, now: clock() },
    );
    return c.json(nodeView(machine));
  })
  .post("/api/v1/nodes/:id/reject", limitJsonBody, adminAuth, validate("param", idParam), validate("json", rejectBody), (c) => {
    const { db, clock } = c.var.deps;
    const machine = rejectMachine(db, c.req.valid("param").id, {
      reason: c.req.valid("json").reason,
      actor: adminActor(c),
      sourceIp: c.var.sourceIp,
      now: clock(),
    });
    return c.json(nodeView(machine));
  })
  .post("/api/v1/nodes/:id/retire", limitJsonBody, adminAuth, validate("param", idParam), validate("json", rejectBody), (c) => {
    // Its seat goes back to the quorum for the next machine.
    const machine = retireMachine(c.var.deps.db, c.req.valid("param").id, {
      now: c.var.deps.clock(),
      actor: adminActor(c),
      sourceIp: c.var.sourceIp,
      reason: c.req.valid("json").reason,
    });
    return c.json(nodeView(machine));
  })
  .post("/api/v1/keys/rotate", adminAuth, (c) => {
    const { db, keyring, config, clock, logger } = c.var.deps;
    const result = rotateSigningKey(db, keyring, {
      dataDir: config.dataDir,
      now: clock(),
      // A retired key must verify until the longest-lived token it signed has expired.
      maxTokenLifetimeMs: Math.max(config.tokenTtlMs, config.credentialTtlMs),
      actor: adminActor(c),
      sourceIp: c.var.sourceIp,
    });
    logger.info(result, "signing key rotated");
    return c.json({ active_kid: result.active, retired_kid: result.retired, pruned_kids: result.pruned });
  });
