/**
 * Quorum maintenance outside a node's request: re-forming a cluster that lost every server, and
 * where the lease clock starts (`quorum/lease-clock.ts`).
 */
import { and, asc, eq, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { clusters, machines, type ClusterRow } from "../../db/schema.js";
import { refuse } from "../errors.js";
import { recordAudit } from "./audit.js";
import { getCluster } from "./clusters.js";
import { transact } from "./transaction.js";

/** The newest lease start held, so a lease clock started after a backward clock step never freezes a lease. */
export function newestLeaseStart(db: Queryable): number | null {
  const row = db
    .select({ at: sql<number | null>`max(${machines.roleAssignedAt})` })
    .from(machines)
    .where(and(isNotNull(machines.role), isNull(machines.k3sStartedAt)))
    .get();
  return row?.at ?? null;
}

/**
 * Re-form a cluster that lost every server: forget that it formed (init started, formed, its CA)
 * so the next approved machine becomes its init. Refused while any machine holds a server seat
 * (retire or reinstall them first): their etcd may still be the cluster.
 */
export function reformCluster(db: Db, clusterId: number, o: { now: number; actor: string; sourceIp?: string | null }): ClusterRow {
  return transact(db, (tx) => {
    const cluster = getCluster(tx, clusterId);
    if (!cluster) return refuse("not_found", `no cluster ${clusterId}`);
    const alive = tx
      .select()
      .from(machines)
      .where(and(eq(machines.clusterId, clusterId), inArray(machines.role, ["init", "server"])))
      .orderBy(asc(machines.id))
      .all();
    if (alive.length > 0) {
      const who = alive.map((s) => `machine ${s.id} (${s.role}, ${s.state})`).join(", ");
      return refuse("invalid_state", `cluster ${cluster.name} still has servers: ${who}; retire or reinstall them before re-forming it`, {
        servers: alive.map((s) => s.id),
      });
    }
    const row = tx
      .update(clusters)
      .set({ initStartedAt: null, formedAt: null, caHash: null, updatedAt: o.now })
      .where(eq(clusters.id, clusterId))
      .returning()
      .get();
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp || null,
      action: "cluster.reformed",
      clusterId,
      detail: { init_started_at: cluster.initStartedAt, formed_at: cluster.formedAt, ca_hash: cluster.caHash },
    });
    return row;
  });
}
