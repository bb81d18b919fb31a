/**
 * The admin's inventory and decisions, behind the admin token: list and inspect machines, see
 * their progress, approve or reject them, rotate the signing key.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv, MachineRow } from "../context.js";
import { machineStates } from "../lifecycle/machine.js";
import { listAudit } from "../store/audit.js";
import { rotateSigningKey } from "../store/keys.js";
import { approveMachine, reinstallMachine, rejectMachine, retireMachine } from "../store/decisions.js";
import { listNodeEvents } from "../store/machines.js";
import { listMachinesPage } from "../store/inventory.js";
import { k3sRemovalFor } from "../quorum/report.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { machineFromRef, machineRefParam } from "./middleware/machine-ref.js";
import { pageBody, pagedQuery, pageRequest } from "./middleware/pagination.js";
import { limitJsonBody, validate } from "./middleware/validate.js";
import { approveBody, reasonBody } from "./schemas/decisions.js";

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
    // Refused second enrollments (one enrollment per install): approve with dismiss_conflicts, reject or reinstall.
    conflicts: m.conflicts.map((x) => ({ at: iso(x.at), source_ip: x.source_ip, facts: x.facts })),
    // What anonymous boot and seed requests last said; never applied to the identity above.
    reported: m.reported ? { ...m.reported, at: iso(m.reported.at) } : null,
    install_generation: m.installGeneration,
    enrolled_this_install: m.enrolledGeneration !== null && m.enrolledGeneration === m.installGeneration,
    installed_at: iso(m.installedAt),
    approved_by: m.approvedBy,
    // The installer reported a failure since the machine last enrolled: look at its events.
    install_failed: m.installFailedAt !== null,
    install_failed_at: iso(m.installFailedAt),
    first_seen_at: iso(m.firstSeenAt),
    last_seen_at: iso(m.lastSeenAt),
    state_changed_at: iso(m.stateChangedAt),
    role_assigned_at: iso(m.roleAssignedAt),
    k3s_started_at: iso(m.k3sStartedAt),
    ready_at: iso(m.readyAt),
  };
}

const listQuery = pagedQuery({
  state: z.enum(machineStates).optional(),
  cluster_id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, "cluster_id must be a cluster id")
    .transform(Number)
    .optional(),
  q: z.string().min(1).max(64, "q: at most 64 characters").optional(),
  install_failed: z.enum(["true", "false"], { error: "install_failed must be true or false" }).optional(),
});

/** The machine the path's `:id` names: an id, a MAC or a serial. */
function mustGetMachine(c: { var: AppEnv["Variables"] }, ref: string): MachineRow {
  return machineFromRef(c.var.deps.db, ref);
}

/** Approving a machine that is already approved (or further) changes nothing and says so. */
const approvedStates: readonly MachineRow["state"][] = ["approved", "provisioning", "joined"];

export const adminRoutes = new Hono<AppEnv>()
  .get("/api/v1/nodes", adminAuth, validate("query", listQuery), (c) => {
    const q = c.req.valid("query");
    const filter = { state: q.state, clusterId: q.cluster_id, q: q.q, installFailed: q.install_failed === undefined ? undefined : q.install_failed === "true" };
    return c.json(pageBody("nodes", listMachinesPage(c.var.deps.db, filter, pageRequest(q)), nodeView));
  })
  .get("/api/v1/nodes/:id", adminAuth, validate("param", machineRefParam), (c) => {
    return c.json(nodeView(mustGetMachine(c, c.req.valid("param").id)));
  })
  .get("/api/v1/nodes/:id/events", adminAuth, validate("param", machineRefParam), (c) => {
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
  .post("/api/v1/nodes/:id/approve", limitJsonBody, adminAuth, validate("param", machineRefParam), validate("json", approveBody), (c) => {
    const body = c.req.valid("json");
    const { db, clock } = c.var.deps;
    const current = mustGetMachine(c, c.req.valid("param").id);
    if (approvedStates.includes(current.state) && current.conflicts.length === 0 && (body.cluster_id ?? current.clusterId) === current.clusterId) {
      // A retried click or script: nothing to do, and not an error.
      return c.json({ ...nodeView(current), already_approved: true, message: `machine ${current.id} is already approved (${current.state})` });
    }
    const machine = approveMachine(
      db,
      current.id,
      { clusterId: body.cluster_id, role: body.role, hostname: body.hostname, labels: body.labels, dismissConflicts: body.dismiss_conflicts },
      { actor: adminActor(c), sourceIp: c.var.sourceIp, now: clock() },
    );
    return c.json(nodeView(machine));
  })
  .post("/api/v1/nodes/:id/reject", limitJsonBody, adminAuth, validate("param", machineRefParam), validate("json", reasonBody), (c) => {
    const { db, clock } = c.var.deps;
    const machine = rejectMachine(db, mustGetMachine(c, c.req.valid("param").id).id, {
      reason: c.req.valid("json").reason,
      actor: adminActor(c),
      sourceIp: c.var.sourceIp,
      now: clock(),
    });
    return c.json(nodeView(machine));
  })
  .post("/api/v1/nodes/:id/retire", limitJsonBody, adminAuth, validate("param", machineRefParam), validate("json", reasonBody), (c) => {
    const before = mustGetMachine(c, c.req.valid("param").id);
    // Its seat goes back to the quorum for the next machine.
    const machine = retireMachine(c.var.deps.db, before.id, {
      now: c.var.deps.clock(),
      actor: adminActor(c),
      sourceIp: c.var.sourceIp,
      reason: c.req.valid("json").reason,
    });
    // edgejoin cannot reach into k3s: say what the admin removes there (null when it never ran k3s).
    return c.json({ ...nodeView(machine), remove_from_k3s: before.state === "retired" ? null : k3sRemovalFor(before, before.role) });
  })
  .post("/api/v1/nodes/:id/reinstall", limitJsonBody, adminAuth, validate("param", machineRefParam), validate("json", reasonBody), (c) => {
    // Credentials revoked, seat kept or freed by the quorum rules, the installer served on its next PXE boot, one new enrollment allowed.
    const machine = reinstallMachine(c.var.deps.db, mustGetMachine(c, c.req.valid("param").id).id, {
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
