/**
 * `GET /api/v1/explain`: what would happen to a machine with these claims if it enrolled now.
 * Pure: the store hands it the policy decision, the machine we know (if any) and its cluster's
 * quorum; nothing here writes.
 */
import type { MachineRole, MachineState, RolePreference } from "../lifecycle/machine.js";
import { decideSeat, type QuorumView, type WaitReason } from "../quorum/seats.js";
import type { Consideration, PolicyDecision } from "./decide.js";

/** The seat a newly approved machine would get if it asked now, and what it would wait for first. */
export function roleIfApprovedNow(q: QuorumView, preference: RolePreference): { role: MachineRole; waiting: WaitReason | null } {
  const seat = decideSeat(q, { id: 0, role: null, preference });
  if (seat.kind === "release") return { role: seat.role, waiting: null };
  const servers = q.holders.filter((h) => h.role === "init" || h.role === "server").length;
  // It waits for its turn; the seat it waits for is a server seat while one is free.
  const role: MachineRole = preference === "agent" || servers >= q.desiredServers ? "agent" : "server";
  return { role, waiting: seat.reason };
}

/** Why the machine would not get its k3s config at once. */
export type ExplainWait = WaitReason | "pending_approval" | "unresolved_conflict" | "policy_applies_at_first_enroll_only" | "no_cluster";

/** The explain answer, in the API's names. */
export type Explanation = {
  cluster_id: number | null;
  approval: { by: string; name: string } | null;
  role_if_approved_now: MachineRole | null;
  waiting_reason: ExplainWait | null;
  why: Consideration[];
  /** The machine these claims name, when edgejoin knows it. */
  machine: { id: number; state: MachineState; cluster_id: number | null } | null;
  install_policy: "immediate" | "after_approval" | null;
};

/**
 * Put the answer together. `known` is the machine the MAC names, if any: policy only ever approves
 * a machine at its first enrollment (or at boot, in an `after_approval` cluster), never one that
 * is already past `discovered`.
 */
export function explain(o: {
  decision: PolicyDecision;
  known: { id: number; state: MachineState; clusterId: number | null } | undefined;
  /** The cluster the machine would be in without an approval (its own, or the one its source matches). */
  fallbackClusterId: number | null;
  quorumOf: (clusterId: number) => { view: QuorumView; installPolicy: "immediate" | "after_approval" } | undefined;
}): Explanation {
  const { decision, known } = o;
  const applies = known === undefined || known.state === "discovered";
  const approval = applies ? decision.approval : null;
  const clusterId = approval?.clusterId ?? o.fallbackClusterId;
  const cluster = clusterId === null ? undefined : o.quorumOf(clusterId);
  const projected = cluster ? roleIfApprovedNow(cluster.view, approval?.role ?? "auto") : undefined;
  let waiting: ExplainWait | null;
  if (!cluster) waiting = "no_cluster";
  else if (decision.blockedBy === "conflict") waiting = "unresolved_conflict";
  else if (!applies && decision.approval) waiting = "policy_applies_at_first_enroll_only";
  else if (!approval) waiting = "pending_approval";
  else waiting = projected?.waiting ?? null;
  return {
    cluster_id: clusterId,
    approval: approval ? { by: approval.approvedBy, name: approval.name } : null,
    role_if_approved_now: projected?.role ?? null,
    waiting_reason: waiting,
    why: decision.why,
    machine: known ? { id: known.id, state: known.state, cluster_id: known.clusterId } : null,
    install_policy: cluster?.installPolicy ?? null,
  };
}
