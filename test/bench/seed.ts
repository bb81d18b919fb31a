/**
 * Machines put straight into an edgejoin database in one transaction, as a large site's inventory
 * would have them after its first boot storm: `discovered` in the default cluster (or spread over
 * states when asked). The bench and the scale test seed with it; nothing else writes this way.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { machines } from "../../db/schema.js";
import type { MachineState } from "../../server/lifecycle/machine.js";

/**
 * Insert `count` machines with MAC `macOf(i)`; `stateOf(i)` picks each one's state (default
 * `discovered`). With `named`, each already holds its node name, as after its first seed fetch
 * (cloud-init asks meta-data, which names the machine, before user-data).
 */
export function seedMachines(
  db: Db,
  count: number,
  macOf: (i: number) => string,
  stateOf: (i: number) => MachineState = () => "discovered",
  o: { named?: boolean } = {},
): void {
  const cluster = db.get<{ id: number }>(sql`select id from clusters where is_default = 1`);
  const now = Date.now();
  db.transaction((tx) => {
    for (let i = 0; i < count; i += 500) {
      const rows = [];
      for (let j = i; j < Math.min(count, i + 500); j++) {
        const mac = macOf(j);
        const hostname = o.named ? `node-${mac.replaceAll(":", "")}` : null;
        rows.push({ mac, hostname, state: stateOf(j), clusterId: cluster?.id ?? null, firstSeenAt: now - j, lastSeenAt: now - j, stateChangedAt: now - j });
      }
      tx.insert(machines).values(rows).run();
    }
  });
}
