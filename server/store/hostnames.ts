/** Host names machines get in their NoCloud meta-data: from the cluster's pattern, unique in the cluster. */
import { and, eq, isNull, ne } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { machines } from "../../db/schema.js";
import type { MachineRow } from "../context.js";
import { dnsLabelPattern, expandHostnamePattern } from "../quorum/node-name.js";
import { recordAudit } from "./audit.js";

/**
 * The machine's host name: the one it already has when that is a DNS label, else the cluster's
 * pattern expanded, with `-<id>` added when another machine of the cluster holds that name.
 * Stored on first use, so every later meta-data answer (and the node name) stays the same.
 */
export function assignHostname(
  db: Db,
  machineId: number,
  cluster: { name: string; hostnamePattern: string } | undefined,
  now: number,
): string {
  return db.transaction(
    (tx) => {
      const m = tx.select().from(machines).where(eq(machines.id, machineId)).get() as MachineRow;
      if (m.hostname && dnsLabelPattern.test(m.hostname)) return m.hostname;
      const fallback = `node-${m.mac.replaceAll(":", "")}`;
      const expanded = cluster ? expandHostnamePattern(cluster.hostnamePattern, m, cluster.name) : fallback;
      const isTaken = (name: string) =>
        tx
          .select({ id: machines.id })
          .from(machines)
          .where(
            and(
              eq(machines.hostname, name),
              ne(machines.id, m.id),
              m.clusterId === null ? isNull(machines.clusterId) : eq(machines.clusterId, m.clusterId),
            ),
          )
          .get() !== undefined;
      const withId = (base: string) => `${base.slice(0, 62 - String(m.id).length).replace(/-+$/, "")}-${m.id}`;
      const candidates = [expanded, withId(expanded), fallback, withId(fallback)].filter((n) => dnsLabelPattern.test(n));
      const hostname = candidates.find((n) => !isTaken(n)) ?? withId(fallback);
      tx.update(machines).set({ hostname }).where(eq(machines.id, m.id)).run();
      recordAudit(tx, { at: now, actor: "system", action: "machine.hostname_assigned", machineId: m.id, clusterId: m.clusterId, detail: { hostname } });
      return hostname;
    },
    { behavior: "immediate" },
  );
}
