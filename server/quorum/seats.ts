/**
 * Quorum seats: who becomes the init server, a joining server or an agent, when each may have
 * its config, when a seat is taken back, and how healthy the server quorum is. Pure functions
 * over plain records; the store runs them inside one `BEGIN IMMEDIATE` transaction.
 */

import type { MachineRole, RolePreference } from "../lifecycle/machine.js";

/** A quorum seat: the role a machine holds in its cluster. */
export type SeatRole = MachineRole;

/** Why a machine must ask again later; the agent shows it and retries. */
export type WaitReason = "waiting_for_init" | "waiting_for_previous_server" | "waiting_for_server" | "waiting_for_role" | "waiting_for_reform";

/** A machine of the cluster that holds a seat, as the rules need to see it. */
export type SeatHolder = {
  id: number;
  role: SeatRole;
  /** `joined` once it reported `ready`; `failed` if it reported a failure after k3s started. */
  state: string;
  roleAssignedAt: number | null;
  k3sStartedAt: number | null;
  readyAt: number | null;
};

/** The cluster's quorum as the rules need to see it. */
export type QuorumView = {
  /** Desired server count, init included: 1, 3, 5 or 7. */
  desiredServers: number;
  /** Set once the init server reported k3s running: nobody is given `cluster-init` after that. */
  initStartedAt: number | null;
  holders: SeatHolder[];
};

/** The machine asking for its config. */
export type Asker = {
  id: number;
  role: SeatRole | null;
  preference: RolePreference;
};

/** The answer for one ask: give (or keep) a seat and release the config, or wait. */
export type SeatDecision = { kind: "release"; role: SeatRole; newSeat: boolean } | { kind: "wait"; reason: WaitReason };

const isServer = (h: SeatHolder) => h.role === "init" || h.role === "server";
const isReady = (h: SeatHolder) => h.state === "joined" && h.readyAt !== null;

/** Seconds the agent should wait before asking again, by reason: joins take about a minute. */
export const retryAfterSeconds: Record<WaitReason, number> = {
  waiting_for_init: 15,
  waiting_for_previous_server: 15,
  waiting_for_server: 15,
  waiting_for_role: 10,
  // Nothing changes until an admin re-forms the cluster: ask rarely.
  waiting_for_reform: 60,
};

/**
 * A cluster that formed (its init ran k3s) and has no server seat held any more: every server
 * was retired or re-imaged. Nobody may run `cluster-init` again on their own (that would be a
 * second cluster beside whatever is left); machines wait until an admin re-forms it.
 */
export function needsReform(q: QuorumView): boolean {
  return q.initStartedAt !== null && !q.holders.some(isServer);
}

/**
 * What an admin's reinstall (or a failed machine that installed again) does to its seat. A server
 * whose k3s ran is an etcd member: it keeps its seat and rejoins as itself through the other
 * servers that ran k3s. With none left its cluster's data went with its disk, so the seat is
 * freed (the cluster then waits for a re-form). Agents keep theirs; a server seat whose k3s never
 * started is freed for the next machine.
 */
export function seatAfterReinstall(
  holder: { id: number; role: SeatRole | null; k3sStartedAt: number | null },
  servers: { id: number; role: SeatRole; k3sStartedAt: number | null }[],
): "keep" | "free" | "none" {
  if (holder.role === null) return "none";
  if (holder.role === "agent") return "keep";
  if (holder.k3sStartedAt === null) return "free";
  return servers.some((s) => s.id !== holder.id && s.k3sStartedAt !== null) ? "keep" : "free";
}

/**
 * Decide for one ask. A holder keeps its seat and gets its config every time; a machine without
 * a seat takes the init seat if the cluster never formed, else a free server seat once the
 * previous server is ready (etcd adds members one at a time: concurrent joins fail with "too
 * many learner members"), else an agent seat once any server is ready.
 * `serverPreferredWaiting` says another machine approved as `server` is asking too: an `auto`
 * machine leaves it the free server seat.
 */
export function decideSeat(q: QuorumView, asker: Asker, opts: { serverPreferredWaiting?: boolean } = {}): SeatDecision {
  if (asker.role !== null) return { kind: "release", role: asker.role, newSeat: false };

  if (needsReform(q)) return { kind: "wait", reason: "waiting_for_reform" };
  const servers = q.holders.filter(isServer);
  const serverReady = servers.some(isReady);
  const agentSeat = (): SeatDecision => (serverReady ? { kind: "release", role: "agent", newSeat: true } : { kind: "wait", reason: "waiting_for_server" });

  if (asker.preference === "agent") return agentSeat();

  const init = servers.find((h) => h.role === "init");
  if (!init && q.initStartedAt === null) {
    if (asker.preference === "auto" && opts.serverPreferredWaiting) return { kind: "wait", reason: "waiting_for_role" };
    return { kind: "release", role: "init", newSeat: true };
  }
  if (servers.length >= q.desiredServers) return agentSeat();

  // A server seat is free: it waits for the machine whose turn it is.
  if (init && !isReady(init)) return { kind: "wait", reason: "waiting_for_init" };
  if (servers.some((h) => !isReady(h))) return { kind: "wait", reason: "waiting_for_previous_server" };
  if (!serverReady) return { kind: "wait", reason: "waiting_for_server" };
  if (asker.preference === "auto" && opts.serverPreferredWaiting) return { kind: "wait", reason: "waiting_for_role" };
  return { kind: "release", role: "server", newSeat: true };
}

/**
 * Seats whose machine has not reported `k3s-started` within the lease: they are taken back.
 * A machine that reported k3s running keeps its seat (an init server is never replaced
 * automatically once its cluster exists).
 */
export function expiredSeats(holders: SeatHolder[], now: number, leaseMs: number): SeatHolder[] {
  return holders.filter((h) => h.k3sStartedAt === null && h.roleAssignedAt !== null && now - h.roleAssignedAt >= leaseMs);
}

/** Server quorum health, from the servers' states alone. */
export type QuorumHealth = "ok" | "degraded" | "lost" | "forming";

/** Majority of the desired server count: what etcd needs to accept writes. */
export function majority(desiredServers: number): number {
  return Math.floor(desiredServers / 2) + 1;
}

/**
 * `ok` when every desired server is ready; before the cluster first reached that, `forming`;
 * after, `degraded` while a majority is ready and `lost` below it.
 */
export function quorumHealth(q: QuorumView, formedAt: number | null): QuorumHealth {
  const ready = q.holders.filter((h) => isServer(h) && isReady(h)).length;
  if (ready >= q.desiredServers) return "ok";
  if (formedAt === null) return "forming";
  return ready >= majority(q.desiredServers) ? "degraded" : "lost";
}

/** True when this many ready servers completes the desired count (the cluster is formed). */
export function isFormed(q: QuorumView): boolean {
  return q.holders.filter((h) => isServer(h) && isReady(h)).length >= q.desiredServers;
}
