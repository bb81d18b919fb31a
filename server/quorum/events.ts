/**
 * What a machine's progress report does to its quorum seat, as a plan the store applies in the
 * transaction that read the rows. `k3s-started` ends the lease; `ready` makes the node joined and
 * records the init server's CA hash; `failed` before k3s ran frees the seat. A report from a seat
 * that was taken back, or a server whose CA is not the cluster's, is a split-brain risk: flagged,
 * never silently accepted. Pure: plain records in, a plan out.
 */
import type { ClusterRow, MachineRow } from "../../db/schema.js";

/** A progress report, validated at the edge. */
export type NodeEventInput = { type: string; detail?: string | null | undefined; caHash?: string | null | undefined };

/** What applying a report means. `flag` and `refuse` are answered with their code after the commit. */
export type NodeEventPlan =
  | { kind: "record_only" }
  | { kind: "flag"; code: "seat_revoked" | "conflict"; message: string; why: string }
  | { kind: "refuse"; message: string }
  | { kind: "failure_without_seat" }
  | { kind: "k3s_started"; setMachineStarted: boolean; setClusterInitStarted: boolean }
  | { kind: "ready"; caHash: string | null; setClusterInitStarted: boolean; setClusterCaHash: boolean }
  | { kind: "failed"; freeSeat: boolean };

/** Report types the quorum acts on; `installing` is only recorded. */
export const quorumEventTypes = new Set(["k3s-started", "ready", "failed"]);

/** Decide what a report does, given the machine (after expired leases were taken back) and its cluster. */
export function planNodeEvent(m: MachineRow, cluster: ClusterRow | undefined, event: NodeEventInput): NodeEventPlan {
  if (!quorumEventTypes.has(event.type)) return { kind: "record_only" };
  const caHash = event.caHash?.toLowerCase() ?? null;
  if (m.role === null) {
    if (m.seatRevokedAt !== null && event.type !== "failed") {
      return {
        kind: "flag",
        code: "seat_revoked",
        message: "this machine's quorum seat was taken back before it reported k3s; the report was flagged as a split-brain risk",
        why: "a machine reports k3s running on a quorum seat that was taken back from it",
      };
    }
    if (event.type === "failed") return { kind: "failure_without_seat" };
    return { kind: "refuse", message: `${event.type} from a machine that holds no quorum seat` };
  }
  if (!cluster) return { kind: "refuse", message: "this machine belongs to no cluster" };
  switch (event.type) {
    case "k3s-started":
      return { kind: "k3s_started", setMachineStarted: m.k3sStartedAt === null, setClusterInitStarted: m.role === "init" && cluster.initStartedAt === null };
    case "ready":
      if (caHash && m.role !== "agent" && cluster.caHash && caHash !== cluster.caHash) {
        return {
          kind: "flag",
          code: "conflict",
          message: "this server's CA is not the cluster's: it runs a cluster of its own; flagged as a split-brain risk",
          why: "a server reports a CA that is not its cluster's (a second cluster formed)",
        };
      }
      return {
        kind: "ready",
        caHash,
        setClusterInitStarted: m.role === "init" && cluster.initStartedAt === null,
        setClusterCaHash: m.role === "init" && caHash !== null && cluster.caHash === null,
      };
    default:
      // failed: before k3s ran, the seat goes to the next machine; after, it stays (etcd may hold
      // the member) and an admin decides, by retiring it.
      return { kind: "failed", freeSeat: m.k3sStartedAt === null };
  }
}
