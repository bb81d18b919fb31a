/** Machines: first sight, later sightings, lookups. */
import { eq } from "drizzle-orm";
import type { Queryable, Db } from "../../db/client.js";
import { machines, type MachineState } from "../../db/schema.js";
import type { MachineRow } from "../context.js";
import { recordAudit } from "./audit.js";
import { matchCluster } from "./clusters.js";

/** What a machine says about itself when it boots (already validated and normalized). */
export type MachineIdentity = {
  mac: string;
  uuid?: string | undefined;
  serial?: string | undefined;
  manufacturer?: string | undefined;
  product?: string | undefined;
  arch?: string | undefined;
  platform?: string | undefined;
};

export function getMachineByMac(db: Queryable, mac: string): MachineRow | undefined {
  return db.select().from(machines).where(eq(machines.mac, mac)).get();
}

export function getMachine(db: Queryable, id: number): MachineRow | undefined {
  return db.select().from(machines).where(eq(machines.id, id)).get();
}

/**
 * Record that a machine was seen (boot script or cloud-init fetch). First sight creates it as
 * `discovered` in its matching cluster and writes an audit event; later sights refresh last
 * seen, last IP and any identity fields it now reports.
 */
export function recordSighting(
  db: Db,
  identity: MachineIdentity,
  sighting: { ip: string | undefined; now: number; via: string },
): { machine: MachineRow; created: boolean } {
  return db.transaction(
    (tx) => {
      const existing = getMachineByMac(tx, identity.mac);
      if (existing) {
        // Empty values (iPXE sends `serial=` when SMBIOS has none) never erase what we knew.
        const refresh = Object.fromEntries(
          Object.entries({
            uuid: identity.uuid,
            serial: identity.serial,
            manufacturer: identity.manufacturer,
            product: identity.product,
            arch: identity.arch,
            platform: identity.platform,
          }).filter(([, v]) => v !== undefined && v !== ""),
        );
        const machine = tx
          .update(machines)
          .set({ ...refresh, lastIp: sighting.ip ?? existing.lastIp, lastSeenAt: sighting.now })
          .where(eq(machines.id, existing.id))
          .returning()
          .get();
        return { machine, created: false };
      }
      const cluster = matchCluster(tx, sighting.ip);
      const machine = tx
        .insert(machines)
        .values({
          mac: identity.mac,
          uuid: identity.uuid || null,
          serial: identity.serial || null,
          manufacturer: identity.manufacturer || null,
          product: identity.product || null,
          arch: identity.arch || null,
          platform: identity.platform || null,
          lastIp: sighting.ip ?? null,
          clusterId: cluster?.id ?? null,
          state: "discovered",
          firstSeenAt: sighting.now,
          lastSeenAt: sighting.now,
          stateChangedAt: sighting.now,
        })
        .returning()
        .get();
      recordAudit(tx, {
        at: sighting.now,
        actor: "anonymous",
        sourceIp: sighting.ip,
        action: "machine.discovered",
        machineId: machine.id,
        clusterId: machine.clusterId,
        detail: { mac: machine.mac, uuid: machine.uuid, serial: machine.serial, via: sighting.via },
      });
      return { machine, created: true };
    },
    { behavior: "immediate" },
  );
}

/** States in which a machine still needs the installer when it netboots. */
export const installableStates: ReadonlySet<MachineState> = new Set([
  "discovered",
  "pending",
  "approved",
  "provisioning",
  "failed",
]);
