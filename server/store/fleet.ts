/** Counts over the whole fleet, for the metrics gauges and the console's overview. Read only. */
import { and, eq, inArray, isNotNull, sql } from "drizzle-orm";
import type { Queryable } from "../../db/client.js";
import { clusters, machines } from "../../db/schema.js";

/** Machines per (state, cluster name); machines without a cluster are under `none`. */
export function countMachines(db: Queryable): { state: string; cluster: string; count: number }[] {
  return db
    .select({ state: machines.state, cluster: sql<string>`coalesce(${clusters.name}, 'none')`, count: sql<number>`count(*)` })
    .from(machines)
    .leftJoin(clusters, eq(clusters.id, machines.clusterId))
    .groupBy(machines.state, clusters.name)
    .all()
    .map((r) => ({ state: r.state, cluster: r.cluster, count: Number(r.count) }));
}

/** Per cluster, how many servers hold their seat and reported ready (the quorum rules' "ready"). */
export function countReadyServers(db: Queryable): { cluster: string; ready: number }[] {
  const ready = db
    .select({ clusterId: machines.clusterId, n: sql<number>`count(*)` })
    .from(machines)
    .where(and(inArray(machines.role, ["init", "server"]), eq(machines.state, "joined"), isNotNull(machines.readyAt)))
    .groupBy(machines.clusterId)
    .all();
  const byId = new Map(ready.map((r) => [r.clusterId, Number(r.n)]));
  // Every cluster gets a series, 0 included: an alert on `== 0` needs the series to exist.
  return db
    .select({ id: clusters.id, name: clusters.name })
    .from(clusters)
    .all()
    .map((c) => ({ cluster: c.name, ready: byId.get(c.id) ?? 0 }));
}
