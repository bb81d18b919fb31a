/**
 * An admin's decisions about a machine: approve, reject, retire, reinstall. Each asks the
 * lifecycle whether the move is allowed from where the machine is, then writes the change and its
 * audit record in one transaction. Reject, retire and reinstall revoke every credential issued
 * before them (the credential generation goes up; the node API checks it inside its own
 * transaction).
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { machines, type MachineRow } from "../../db/schema.js";
import { approvalReopensInstall, hasUnresolvedConflict, next, type MachineEvent, type RolePreference } from "../lifecycle/machine.js";
import { seatAfterReinstall } from "../quorum/seats.js";
import { refuse, type Refusal } from "../errors.js";
import type { Tx } from "../../db/client.js";
import { recordAudit } from "./audit.js";
import { getCluster } from "./clusters.js";
import { getMachine, nameTakenIn } from "./machines.js";
import { transact } from "./transaction.js";

/** An admin's approval: where the machine goes, what it may be, what it is called. */
export type Approval = {
  clusterId?: number | undefined;
  role: RolePreference;
  hostname?: string | undefined;
  labels?: Record<string, string> | undefined;
  /** Approve although the machine has conflicts (refused second enrollments): the admin looked. */
  dismissConflicts?: boolean | undefined;
};

/** The columns that revoke every credential issued so far and void the install's enrollment. */
function revocation(m: MachineRow) {
  return { credentialGeneration: m.credentialGeneration + 1, enrolledGeneration: null };
}

/** Who decided, from where, when. */
export type DecisionContext = { actor: string; sourceIp?: string | null | undefined; now: number };

/** The machine and where `event` takes it, or why not. */
function load(tx: Tx, id: number, event: MachineEvent): { m: MachineRow; to: MachineRow["state"] } | Refusal {
  const m = getMachine(tx, id);
  if (!m) return refuse("not_found", `no machine with id ${id}`);
  const move = next(event, m);
  if ("refused" in move) return refuse("invalid_state", `machine ${id}: ${move.refused}`);
  return { m, to: move.to };
}

/** Approve a machine (discovered, pending, rejected, failed or retired → approved); `approved_by` is the actor. */
export function approveMachine(db: Db, id: number, approval: Approval, o: DecisionContext): MachineRow {
  return transact(db, (tx) => {
    const current = getMachine(tx, id);
    if (current && hasUnresolvedConflict(current)) {
      if (!approval.dismissConflicts) {
        return refuse(
          "unresolved_conflict",
          `machine ${id} has ${current.conflicts.length} unresolved conflict(s) (a second enrollment was refused): look at them, then approve with dismiss_conflicts: true, or reject or reinstall it`,
          { conflicts: current.conflicts.length },
        );
      }
      // Already approved (or further): dismissing the conflicts is the whole decision.
      if (current.state === "approved" || current.state === "provisioning" || current.state === "joined") {
        const cleared = tx.update(machines).set({ conflicts: [] }).where(eq(machines.id, id)).returning().get();
        recordAudit(tx, {
          at: o.now,
          actor: o.actor,
          sourceIp: o.sourceIp || null,
          action: "machine.conflicts_dismissed",
          machineId: id,
          clusterId: current.clusterId,
          detail: { conflicts: current.conflicts.length, state: current.state },
        });
        return cleared;
      }
    }
    const loaded = load(tx, id, "approve");
    if ("code" in loaded) return loaded;
    const { m, to } = loaded;
    const clusterId = approval.clusterId ?? m.clusterId;
    if (m.role !== null && clusterId !== m.clusterId) {
      // A seat moves with nobody: it is freed by retire (the quorum rules), then the machine may go.
      return refuse(
        "conflict",
        `machine ${id} holds the ${m.role} seat of cluster ${m.clusterId}: retire it first (which frees that seat by the quorum rules), then approve it into cluster ${clusterId}`,
      );
    }
    if (clusterId === null) return refuse("validation_failed", "cluster_id: this machine has no cluster yet; give cluster_id");
    if (!getCluster(tx, clusterId)) return refuse("validation_failed", `cluster_id: no cluster with id ${clusterId}`);
    if (approval.hostname) {
      const taken = nameTakenIn(tx, clusterId, approval.hostname, id);
      if (taken) return refuse("conflict", `hostname ${approval.hostname} is already machine ${taken.id}'s in this cluster`);
    }
    // An enrollment revoked after its install ended: only a new install can enroll it again.
    const reopen = approvalReopensInstall(m);
    const updated = tx
      .update(machines)
      .set({
        state: to,
        stateChangedAt: o.now,
        clusterId,
        rolePreference: approval.role,
        approvedBy: o.actor,
        // Approved before it ever enrolled: the enroll its install ends with keeps the approval.
        approvedBeforeEnroll: m.state === "discovered",
        conflicts: [],
        ...(reopen ? { installGeneration: m.installGeneration + 1, installedAt: null } : {}),
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
        ...(m.conflicts.length > 0 ? { conflicts_dismissed: m.conflicts.length } : {}),
        ...(reopen ? { install_reopened: true } : {}),
        ...(approval.clusterId !== undefined ? { cluster_id: approval.clusterId } : {}),
        ...(approval.hostname ? { hostname: approval.hostname } : {}),
        ...(approval.labels ? { labels: approval.labels } : {}),
      },
    });
    return updated;
  });
}

/** Reject a machine that holds no seat; one with a seat must be retired instead, so its seat is freed properly. */
export function rejectMachine(db: Db, id: number, o: DecisionContext & { reason?: string | undefined }): MachineRow {
  return transact(db, (tx) => {
    const loaded = load(tx, id, "reject");
    if ("code" in loaded) return loaded;
    const { m, to } = loaded;
    const updated = tx
      .update(machines)
      .set({ state: to, stateChangedAt: o.now, ...revocation(m) })
      .where(eq(machines.id, id))
      .returning()
      .get();
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
  });
}

/** Retire a machine: it leaves the cluster and its seat is free for the next machine. Retiring twice is a no-op. */
export function retireMachine(db: Db, id: number, o: DecisionContext & { reason?: string | null | undefined }): MachineRow {
  return transact(db, (tx) => {
    const current = getMachine(tx, id);
    if (current?.state === "retired") return current;
    const loaded = load(tx, id, "retire");
    if ("code" in loaded) return loaded;
    const { m, to } = loaded;
    const retired = tx
      .update(machines)
      .set({ role: null, state: to, stateChangedAt: o.now, ...revocation(m) })
      .where(eq(machines.id, id))
      .returning()
      .get();
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp ?? null,
      action: "machine.retired",
      machineId: id,
      clusterId: m.clusterId,
      detail: { role: m.role, previous_state: m.state, reason: o.reason ?? null },
    });
    return retired;
  });
}

/**
 * An admin's reinstall: the machine's credentials are revoked, its seat kept or freed by the
 * quorum rules (`seatAfterReinstall`), its conflicts resolved, and a new install opens: the next
 * PXE boot gets the installer and one new enrollment is allowed (it lands in pending).
 */
export function reinstallMachine(db: Db, id: number, o: DecisionContext & { reason?: string | null | undefined }): MachineRow {
  return transact(db, (tx) => {
    const loaded = load(tx, id, "reinstall");
    if ("code" in loaded) return loaded;
    const { m, to } = loaded;
    const servers =
      m.clusterId === null
        ? []
        : tx
            .select({ id: machines.id, role: machines.role, k3sStartedAt: machines.k3sStartedAt })
            .from(machines)
            .where(and(eq(machines.clusterId, m.clusterId), inArray(machines.role, ["init", "server"])))
            .all()
            .map((r) => ({ ...r, role: r.role! }));
    const seat = seatAfterReinstall(m, servers);
    const updated = tx
      .update(machines)
      .set({
        state: to,
        stateChangedAt: o.now,
        ...revocation(m),
        installGeneration: m.installGeneration + 1,
        installedAt: null,
        conflicts: [],
        ...(seat === "free" ? { role: null, roleAssignedAt: null, k3sStartedAt: null, readyAt: null, caHash: null } : {}),
      })
      .where(eq(machines.id, id))
      .returning()
      .get();
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp || null,
      action: "machine.reinstall_requested",
      machineId: id,
      clusterId: m.clusterId,
      detail: {
        from: m.state,
        role: m.role,
        seat,
        install_generation: m.installGeneration + 1,
        ...(m.conflicts.length > 0 ? { conflicts_resolved: m.conflicts.length } : {}),
        reason: o.reason ?? null,
      },
    });
    return updated;
  });
}
