/** Machines: first sight, later sightings, lookups, the inventory, node names, progress events. */
import { and, desc, eq, isNull, ne, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, nodeEvents, type MachineRow, type ReportedSighting } from "../../db/schema.js";
import { next, type MachineEvent, type MachineState, type LifecycleView } from "../lifecycle/machine.js";
import { chooseNodeName } from "../lifecycle/node-name.js";
import { refuse } from "../errors.js";
import { recordAudit } from "./audit.js";
import { matchCluster } from "./clusters.js";
import { prepared } from "./prepared.js";
import { transact } from "./transaction.js";
import { deferWrite } from "./deferred.js";

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

const byMac = (q: Queryable) =>
  q
    .select()
    .from(machines)
    .where(eq(machines.mac, sql.placeholder("mac")))
    .prepare();
const byId = (q: Queryable) =>
  q
    .select()
    .from(machines)
    .where(eq(machines.id, sql.placeholder("id")))
    .prepare();
const refreshSighting = (q: Queryable) =>
  q
    .update(machines)
    // drizzle wraps a placeholder in `set` with the column's encoder (JSON here) but its types do not say so.
    .set({ reported: sql.placeholder("reported") as unknown as ReportedSighting, lastSeenAt: sql.placeholder("lastSeenAt") as unknown as number })
    .where(eq(machines.id, sql.placeholder("id")))
    .returning()
    .prepare();
const refreshSightingOnly = (q: Queryable) =>
  q
    .update(machines)
    .set({ reported: sql.placeholder("reported") as unknown as ReportedSighting, lastSeenAt: sql.placeholder("lastSeenAt") as unknown as number })
    .where(eq(machines.id, sql.placeholder("id")))
    .prepare();
const setHostname = (q: Queryable) =>
  q
    .update(machines)
    .set({ hostname: sql.placeholder("hostname") as unknown as string })
    .where(eq(machines.id, sql.placeholder("id")))
    .prepare();
const nameHolder = (q: Queryable) =>
  q
    .select({ id: machines.id })
    .from(machines)
    .where(
      and(
        eq(machines.hostname, sql.placeholder("name")),
        ne(machines.id, sql.placeholder("exceptId")),
        ne(machines.state, "retired"),
        eq(machines.clusterId, sql.placeholder("clusterId")),
      ),
    )
    .limit(1)
    .prepare();

export function getMachineByMac(db: Queryable, mac: string): MachineRow | undefined {
  return prepared(db, byMac).get({ mac });
}

export function getMachine(db: Queryable, id: number): MachineRow | undefined {
  return prepared(db, byId).get({ id });
}

/**
 * The state columns a lifecycle move writes, or none when the lifecycle does not allow it from
 * where the machine is (callers that must refuse ask `next` themselves first).
 */
export function moved(event: MachineEvent, m: LifecycleView, now: number): { state?: MachineState; stateChangedAt?: number } {
  const t = next(event, m);
  return "to" in t ? { state: t.to, stateChangedAt: now } : {};
}

/** What a sighting may do beyond refreshing: create a machine, write a refusal audit (rate limits live in the caller). */
export type SightingLimits = { mayCreate?: () => boolean; mayAudit?: (machineId: number) => boolean };

const identityFields = ["uuid", "serial", "manufacturer", "product", "arch", "platform"] as const;

/** Identity fields (and, once enrolled, the address) where a sighting disagrees with what the machine is known as. */
function disagreements(m: MachineRow, said: Partial<Record<(typeof identityFields)[number], string>>, ip: string | undefined): string[] {
  return [
    ...identityFields.filter((k) => said[k] !== undefined && m[k] !== null && said[k]!.toLowerCase() !== m[k]!.toLowerCase()),
    ...(m.enrolledGeneration !== null && ip && m.lastIp && ip !== m.lastIp ? ["ip"] : []),
  ];
}

/** Whether a sighting reports something other than the one before it (a repeat is not audited again). */
function isNewSighting(before: ReportedSighting | null, now: ReportedSighting): boolean {
  return !before || identityFields.some((k) => before[k] !== now[k]) || before.ip !== now.ip;
}

function sightingNeedsAudit(m: MachineRow, said: Partial<Record<(typeof identityFields)[number], string>>, reported: ReportedSighting, ip: string | undefined) {
  return disagreements(m, said, ip).length > 0 && isNewSighting(m.reported, reported);
}

/** Sighting refreshes queued for the next flush, by machine: what a later sighting compares with before they are written. */
const pendingSightings = new WeakMap<Db, Map<number, { reported: ReportedSighting; lastSeenAt: number }>>();

function withPendingSighting(db: Db, m: MachineRow | undefined): MachineRow | undefined {
  const pending = m && pendingSightings.get(db)?.get(m.id);
  return pending ? { ...m, ...pending } : m;
}

function deferSightingRefresh(db: Db, id: number, reported: ReportedSighting, lastSeenAt: number): void {
  let pending = pendingSightings.get(db);
  if (!pending) {
    pending = new Map();
    pendingSightings.set(db, pending);
  }
  pending.set(id, { reported, lastSeenAt });
  deferWrite(
    db,
    (tx) => {
      const latest = pendingSightings.get(db)?.get(id);
      if (!latest) return;
      pendingSightings.get(db)?.delete(id);
      prepared(tx, refreshSightingOnly).run({ reported: latest.reported, lastSeenAt: latest.lastSeenAt, id });
    },
    `sighting:${id}`,
  );
}

/**
 * Record that a machine was seen (boot script or cloud-init fetch). First sight creates it as
 * `discovered` in its matching cluster and writes an audit event. Later sightings are anonymous
 * and never trusted: they refresh `last_seen_at` and what the machine *reported*, never its
 * identity (MAC, UUID, serial, arch...) nor `last_ip` (the address k3s configs point other
 * machines at), which come only from the enrollment and credentialed requests. A sighting that
 * disagrees with them is audited (once per new disagreement), not applied. A refresh with
 * nothing to audit is written with the next flush of deferred writes (`store/deferred.ts`).
 */
export function recordSighting(
  db: Db,
  identity: MachineIdentity,
  sighting: { ip: string | undefined; now: number; via: string },
  limits: SightingLimits = {},
): { machine: MachineRow; created: boolean } {
  // Empty values (iPXE sends `serial=` when SMBIOS has none) say nothing.
  const said = Object.fromEntries(identityFields.flatMap((k) => (identity[k] ? [[k, identity[k]]] : []))) as Partial<
    Record<(typeof identityFields)[number], string>
  >;
  const reported: ReportedSighting = { at: sighting.now, via: sighting.via, ip: sighting.ip || null, ...said };
  // A known machine that says what it said before (every boot of a storm): its refresh waits for
  // the next flush of deferred writes, and the answer needs no write transaction of its own.
  const known = withPendingSighting(db, getMachineByMac(db, identity.mac));
  if (known && !sightingNeedsAudit(known, said, reported, sighting.ip)) {
    deferSightingRefresh(db, known.id, reported, sighting.now);
    return { machine: { ...known, reported, lastSeenAt: sighting.now }, created: false };
  }
  return transact(db, (tx) => {
    const existing = withPendingSighting(db, getMachineByMac(tx, identity.mac));
    if (existing) {
      const differs = disagreements(existing, said, sighting.ip);
      const isNew = isNewSighting(existing.reported, reported);
      pendingSightings.get(db)?.delete(existing.id);
      const machine = prepared(tx, refreshSighting).get({ reported, lastSeenAt: sighting.now, id: existing.id })!;
      if (differs.length > 0 && isNew && (limits.mayAudit?.(existing.id) ?? true)) {
        recordAudit(tx, {
          at: sighting.now,
          actor: "anonymous",
          sourceIp: sighting.ip || null,
          action: "machine.sighting_disagrees",
          machineId: existing.id,
          clusterId: existing.clusterId,
          detail: {
            via: sighting.via,
            fields: differs,
            known: Object.fromEntries(differs.map((k) => [k, k === "ip" ? existing.lastIp : existing[k as (typeof identityFields)[number]]])),
            reported: Object.fromEntries(differs.map((k) => [k, k === "ip" ? (sighting.ip ?? null) : said[k as (typeof identityFields)[number]]])),
          },
        });
      }
      return { machine, created: false };
    }
    if (limits.mayCreate && !limits.mayCreate()) {
      return refuse(
        "rate_limited",
        "too many new machines were seen lately (from this address or in total); this one is not recorded yet: try again in a minute",
      );
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
        lastIp: sighting.ip || null,
        reported,
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
  });
}

/** Machines for the admin inventory, oldest first, optionally one state or cluster. */
export function listMachines(db: Queryable, filter: { state?: MachineState | undefined; clusterId?: number | undefined } = {}): MachineRow[] {
  return db
    .select()
    .from(machines)
    .where(
      and(filter.state ? eq(machines.state, filter.state) : undefined, filter.clusterId !== undefined ? eq(machines.clusterId, filter.clusterId) : undefined),
    )
    .orderBy(machines.id)
    .all();
}

/** The scope of the naming rule: another live (not retired) machine of the same cluster holds `name`. */
export function nameTakenIn(db: Queryable, clusterId: number | null, name: string, exceptId: number): { id: number } | undefined {
  if (clusterId !== null) return prepared(db, nameHolder).get({ name, exceptId, clusterId });
  return db
    .select({ id: machines.id })
    .from(machines)
    .where(
      and(
        eq(machines.hostname, name),
        ne(machines.id, exceptId),
        ne(machines.state, "retired"),
        clusterId === null ? isNull(machines.clusterId) : eq(machines.clusterId, clusterId),
      ),
    )
    .limit(1)
    .get();
}

/**
 * The machine's host name (`local-hostname` in its meta-data, later its k3s node name), chosen by
 * the one naming rule and stored on first use, so every later answer stays the same.
 */
export function assignHostname(db: Db, machineId: number, cluster: { name: string; hostnamePattern: string } | undefined, now: number): string {
  // Every seed fetch after the first finds the name stored and still free: no write transaction for that.
  const seen = getMachine(db, machineId);
  if (seen?.hostname && chooseNodeName(seen, cluster, (name) => nameTakenIn(db, seen.clusterId, name, seen.id) !== undefined) === seen.hostname) {
    return seen.hostname;
  }
  return transact(db, (tx) => {
    const m = getMachine(tx, machineId)!;
    const hostname = chooseNodeName(m, cluster, (name) => nameTakenIn(tx, m.clusterId, name, m.id) !== undefined);
    if (hostname === m.hostname) return hostname;
    prepared(tx, setHostname).run({ hostname, id: m.id });
    recordAudit(tx, { at: now, actor: "system", action: "machine.hostname_assigned", machineId: m.id, clusterId: m.clusterId, detail: { hostname } });
    return hostname;
  });
}

export type NodeEventRow = typeof nodeEvents.$inferSelect;

/** A machine's progress events, newest first. */
export function listNodeEvents(db: Queryable, machineId: number, limit = 200): NodeEventRow[] {
  return db.select().from(nodeEvents).where(eq(nodeEvents.machineId, machineId)).orderBy(desc(nodeEvents.id)).limit(limit).all();
}
