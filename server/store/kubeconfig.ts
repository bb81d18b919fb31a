/** A cluster's admin kubeconfig: handed in by its init server, read by admins (both audited). */
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { clusters, machines } from "../../db/schema.js";
import { refuse } from "../errors.js";
import { recordAudit } from "./audit.js";
import { transact } from "./transaction.js";

/**
 * Keep the kubeconfig machine `machineId` handed in. Only the init server of a cluster, once
 * ready (joined) and not flagged for split brain, may: the file grants cluster-admin.
 */
export function saveKubeconfig(db: Db, machineId: number, text: string, o: { now: number; sourceIp: string | null }): { clusterId: number } {
  return transact(db, (tx) => {
    const m = tx.select().from(machines).where(eq(machines.id, machineId)).get();
    if (!m || m.clusterId === null) return refuse("not_found", "this machine belongs to no cluster");
    if (m.role !== "init" || m.state !== "joined" || m.splitBrainRisk) {
      return refuse("forbidden", "only a cluster's init server, once it reported ready, hands edgejoin the cluster's kubeconfig");
    }
    tx.update(clusters).set({ adminKubeconfig: text, kubeconfigAt: o.now, updatedAt: o.now }).where(eq(clusters.id, m.clusterId)).run();
    recordAudit(tx, {
      at: o.now,
      actor: `machine:${m.id}`,
      sourceIp: o.sourceIp,
      action: "cluster.kubeconfig_uploaded",
      machineId: m.id,
      clusterId: m.clusterId,
      detail: { bytes: Buffer.byteLength(text, "utf8") },
    });
    return { clusterId: m.clusterId };
  });
}

/**
 * The stored kubeconfig of cluster `clusterId` and the host it should point at: the
 * registration address, else the init server's address, else a joined server's. Audited.
 */
export function readKubeconfig(
  db: Db,
  clusterId: number,
  by: { actor: string; sourceIp: string | null; now: number },
): { text: string; host: string; name: string } {
  return transact(db, (tx) => {
    const c = tx.select().from(clusters).where(eq(clusters.id, clusterId)).get();
    if (!c) return refuse("not_found", `no cluster ${clusterId}`);
    if (!c.adminKubeconfig) {
      return refuse("not_found", `cluster ${c.name} has no kubeconfig yet: its init server hands it in once k3s is ready`);
    }
    const servers = tx
      .select({ role: machines.role, ip: machines.lastIp })
      .from(machines)
      .where(and(eq(machines.clusterId, clusterId), inArray(machines.role, ["init", "server"]), eq(machines.state, "joined")))
      .orderBy(asc(machines.id))
      .all();
    const host = c.registrationAddress ?? servers.find((s) => s.role === "init" && s.ip)?.ip ?? servers.find((s) => s.ip)?.ip;
    if (!host) return refuse("invalid_state", `cluster ${c.name} has no registration address and no ready server with a known address`);
    recordAudit(tx, { at: by.now, actor: by.actor, sourceIp: by.sourceIp, action: "cluster.kubeconfig_read", clusterId });
    return { text: c.adminKubeconfig, host, name: c.name };
  });
}
