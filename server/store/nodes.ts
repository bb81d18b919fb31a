/**
 * Enrolled machines ("nodes"): enrolling with a bootstrap token, an admin's approve/reject
 * decision, the agent's progress events, and the inventory admins list. Each change and its
 * audit record are written in one transaction.
 */
import { and, desc, eq, lt, ne } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, nodeEvents, usedTokens, type MachineState } from "../../db/schema.js";
import type { MachineRow } from "../context.js";
import { decideEnrollment, meaningfulSerial, meaningfulUuid, type EnrollRequest } from "../enrollment/enroll.js";
import type { BootstrapClaims } from "../enrollment/tokens.js";
import { ApiError, type ErrorCode } from "../errors.js";
import { recordAudit } from "./audit.js";
import { getCluster } from "./clusters.js";
import { getMachine, getMachineByMac } from "./machines.js";

/** The result of an enroll attempt whose token verified: the machine, or why it was refused. */
export type EnrollOutcome = { ok: true; machine: MachineRow; created: boolean } | { ok: false; error: ApiError };

/**
 * Seam for pre-registration and auto-approve policies (`POST /api/v1/machines`): when one matches
 * the enrolling machine, enroll lands it in `approved` instead of `pending`. None exist yet.
 */
function matchesPreRegistration(_tx: Queryable, _machine: { mac: string; uuid?: string | undefined; serial?: string | undefined }): boolean {
  return false;
}

/**
 * Enroll with a verified bootstrap token: spend its `jti` and create or update the machine in
 * one immediate transaction. A refused attempt writes only its audit record and never spends the
 * token; a replayed `jti` is refused.
 */
export function enrollMachine(
  db: Db,
  o: { claims: BootstrapClaims; request: EnrollRequest; sourceIp: string; now: number },
): EnrollOutcome {
  const { claims, request, now } = o;
  return db.transaction(
    (tx): EnrollOutcome => {
      const existing = getMachineByMac(tx, request.mac);
      const refuse = (code: ErrorCode, message: string, detail: Record<string, unknown>): EnrollOutcome => {
        recordAudit(tx, {
          at: now,
          actor: "anonymous",
          sourceIp: o.sourceIp || null,
          action: code === "identity_conflict" ? "enroll.identity_conflict" : "enroll.refused",
          machineId: existing?.id ?? null,
          clusterId: existing?.clusterId ?? claims.clusterId,
          detail: { code, mac: request.mac, jti: claims.jti, kid: claims.kid, ...detail },
        });
        return { ok: false, error: new ApiError(code, message) };
      };

      if (tx.select({ jti: usedTokens.jti }).from(usedTokens).where(eq(usedTokens.jti, claims.jti)).get()) {
        return refuse("token_replayed", "this bootstrap token was already used; fetch user-data again for a fresh one", {});
      }
      const decision = decideEnrollment({
        claims,
        request,
        machine: existing,
        tokenClusterExists: getCluster(tx, claims.clusterId) !== undefined,
        preApproved: matchesPreRegistration(tx, request),
      });
      if (decision.kind === "refuse") return refuse(decision.refusal.code, decision.refusal.message, decision.refusal.detail);

      const facts = {
        ...(request.facts ?? {}),
        ...(request.hostname ? { hostname: request.hostname } : {}),
        ...(request.ip ? { ip: request.ip } : {}),
      };
      const uuid = meaningfulUuid(request.uuid);
      const serial = meaningfulSerial(request.serial);
      let machine: MachineRow;
      if (existing) {
        machine = tx
          .update(machines)
          .set({
            // Fill what boot did not tell us; never overwrite a known identity (a conflict was refused above).
            uuid: meaningfulUuid(existing.uuid) ? existing.uuid : (uuid ?? existing.uuid),
            serial: meaningfulSerial(existing.serial) ? existing.serial : (serial ?? existing.serial),
            manufacturer: existing.manufacturer ?? request.facts?.manufacturer ?? null,
            product: existing.product ?? request.facts?.product ?? null,
            arch: request.arch || existing.arch,
            clusterId: decision.clusterId,
            facts,
            lastIp: o.sourceIp || existing.lastIp,
            lastSeenAt: now,
            ...(decision.stateChanged ? { state: decision.nextState, stateChangedAt: now } : {}),
            ...(decision.revokeCredentials ? { credentialGeneration: existing.credentialGeneration + 1 } : {}),
          })
          .where(eq(machines.id, existing.id))
          .returning()
          .get();
      } else {
        machine = tx
          .insert(machines)
          .values({
            mac: request.mac,
            uuid: uuid ?? null,
            serial: serial ?? null,
            manufacturer: request.facts?.manufacturer ?? null,
            product: request.facts?.product ?? null,
            arch: request.arch || null,
            clusterId: decision.clusterId,
            facts,
            lastIp: o.sourceIp || null,
            state: decision.nextState,
            firstSeenAt: now,
            lastSeenAt: now,
            stateChangedAt: now,
          })
          .returning()
          .get();
      }
      // Spent tokens past their expiry can go: verification refuses them anyway.
      tx.delete(usedTokens).where(lt(usedTokens.expiresAt, now)).run();
      tx.insert(usedTokens).values({ jti: claims.jti, machineId: machine.id, usedAt: now, expiresAt: claims.expiresAt }).run();
      recordAudit(tx, {
        at: now,
        actor: `machine:${machine.id}`,
        sourceIp: o.sourceIp || null,
        action: "machine.enrolled",
        machineId: machine.id,
        clusterId: machine.clusterId,
        detail: {
          from: existing?.state ?? null,
          to: machine.state,
          created: !existing,
          ...(decision.revokeCredentials ? { reenrolled: true, earlier_credentials_revoked: true } : {}),
          jti: claims.jti,
          kid: claims.kid,
        },
      });
      return { ok: true, machine, created: !existing };
    },
    { behavior: "immediate" },
  );
}

/** Audit an enroll whose token was refused before any machine changed (the token itself is never stored). */
export function recordEnrollRefusal(db: Db, o: { code: ErrorCode; mac: string; sourceIp: string; now: number }): void {
  const known = getMachineByMac(db, o.mac);
  recordAudit(db, {
    at: o.now,
    actor: "anonymous",
    sourceIp: o.sourceIp || null,
    action: "enroll.refused",
    machineId: known?.id ?? null,
    clusterId: known?.clusterId ?? null,
    detail: { code: o.code, mac: o.mac },
  });
}

/** An admin's approval: where the machine goes, what it may be, what it is called. */
export type Approval = {
  clusterId?: number | undefined;
  role: "auto" | "server" | "agent";
  hostname?: string | undefined;
  labels?: Record<string, string> | undefined;
};

/**
 * States an admin may approve from: waiting machines, ones rejected earlier, and ones that must
 * be approved again to reinstall (failed: seat taken back or failure reported; retired).
 */
export const approvableStates: ReadonlySet<MachineState> = new Set(["pending", "rejected", "failed", "retired"]);

function mustGetMachine(db: Queryable, id: number): MachineRow {
  const m = getMachine(db, id);
  if (!m) throw new ApiError("not_found", `no machine with id ${id}`);
  return m;
}

/** Approve a machine (pending, rejected, failed or retired → approved); throws ApiError on an invalid transition. */
export function approveMachine(db: Db, id: number, approval: Approval, o: { actor: string; sourceIp: string; now: number }): MachineRow {
  return db.transaction(
    (tx) => {
      const m = mustGetMachine(tx, id);
      if (!approvableStates.has(m.state)) {
        throw new ApiError("invalid_state", `machine ${id} is ${m.state}; only pending, rejected, failed or retired machines can be approved`);
      }
      const clusterId = approval.clusterId ?? m.clusterId;
      if (clusterId === null) throw new ApiError("validation_failed", "cluster_id: this machine has no cluster yet; give cluster_id");
      if (!getCluster(tx, clusterId)) throw new ApiError("validation_failed", `cluster_id: no cluster with id ${clusterId}`);
      if (approval.hostname) {
        // k3s keys a node's password by name: two machines with one name would lock each other out.
        const taken = tx
          .select({ id: machines.id })
          .from(machines)
          .where(and(eq(machines.clusterId, clusterId), eq(machines.hostname, approval.hostname), ne(machines.id, id), ne(machines.state, "retired")))
          .get();
        if (taken) throw new ApiError("conflict", `hostname ${approval.hostname} is already machine ${taken.id}'s in this cluster`);
      }
      const updated = tx
        .update(machines)
        .set({
          state: "approved",
          stateChangedAt: o.now,
          clusterId,
          rolePreference: approval.role,
          ...(approval.hostname ? { hostname: approval.hostname } : {}),
          ...(approval.labels ? { labels: approval.labels } : {}),
        })
        .where(eq(machines.id, id))
        .returning()
        .get();
      recordAudit(tx, {
        at: o.now,
        actor: o.actor,
        sourceIp: o.sourceIp || null,
        action: "machine.approved",
        machineId: id,
        clusterId,
        detail: {
          from: m.state,
          role: approval.role,
          ...(approval.clusterId !== undefined ? { cluster_id: approval.clusterId } : {}),
          ...(approval.hostname ? { hostname: approval.hostname } : {}),
          ...(approval.labels ? { labels: approval.labels } : {}),
        },
      });
      return updated;
    },
    { behavior: "immediate" },
  );
}

/**
 * Reject a machine that holds no seat (discovered, pending, or approved/failed without a role);
 * one with a role must be retired instead, so its seat is freed properly.
 */
export function rejectMachine(db: Db, id: number, o: { reason?: string | undefined; actor: string; sourceIp: string; now: number }): MachineRow {
  return db.transaction(
    (tx) => {
      const m = mustGetMachine(tx, id);
      const rejectable = m.state === "discovered" || m.state === "pending" || ((m.state === "approved" || m.state === "failed") && m.role === null);
      if (!rejectable) {
        throw new ApiError(
          "invalid_state",
          m.state === "rejected" ? `machine ${id} is already rejected` : `machine ${id} is ${m.state}${m.role ? ` with role ${m.role}` : ""}; retire it instead`,
        );
      }
      const updated = tx.update(machines).set({ state: "rejected", stateChangedAt: o.now }).where(eq(machines.id, id)).returning().get();
      recordAudit(tx, {
        at: o.now,
        actor: o.actor,
        sourceIp: o.sourceIp || null,
        action: "machine.rejected",
        machineId: id,
        clusterId: m.clusterId,
        detail: { from: m.state, ...(o.reason ? { reason: o.reason } : {}) },
      });
      return updated;
    },
    { behavior: "immediate" },
  );
}

/** Machines for the admin inventory, oldest first, optionally one state or cluster. */
export function listMachines(db: Queryable, filter: { state?: MachineState | undefined; clusterId?: number | undefined } = {}): MachineRow[] {
  return db
    .select()
    .from(machines)
    .where(
      and(
        filter.state ? eq(machines.state, filter.state) : undefined,
        filter.clusterId !== undefined ? eq(machines.clusterId, filter.clusterId) : undefined,
      ),
    )
    .orderBy(machines.id)
    .all();
}

/** What an agent reports about its progress. */
export type AgentEvent = { type: "installing" | "k3s-started" | "ready" | "failed"; detail?: string | undefined; caHash?: string | undefined };

export type NodeEventRow = typeof nodeEvents.$inferSelect;

/** Store an agent's progress report and mark the machine as seen. */
export function recordAgentEvent(db: Db, machineId: number, event: AgentEvent, now: number): NodeEventRow {
  return db.transaction((tx) => {
    tx.update(machines).set({ lastSeenAt: now }).where(eq(machines.id, machineId)).run();
    return tx
      .insert(nodeEvents)
      .values({ machineId, at: now, source: "agent", type: event.type, detail: event.detail ?? null, caHash: event.caHash ?? null })
      .returning()
      .get();
  });
}

/** A machine's progress events, newest first. */
export function listNodeEvents(db: Queryable, machineId: number, limit = 200): NodeEventRow[] {
  return db.select().from(nodeEvents).where(eq(nodeEvents.machineId, machineId)).orderBy(desc(nodeEvents.id)).limit(limit).all();
}
