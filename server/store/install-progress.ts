/**
 * The installer's progress webhook: a narrow per-install token that can do nothing but add
 * installer events to that one machine's record (and, with the installer's final success, mark
 * the install done). The token is an HMAC of the machine and its install generation under a key
 * kept in the database: every seed fetch of one install hands out the same token, so a later
 * fetch (a neighbour's, or cloud-init retrying) never breaks the installer's; a reinstall makes a
 * new one. It is no secret from the LAN (the seed is public): it only scopes what a URL may touch.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, nodeEvents, settings } from "../../db/schema.js";
import type { MachineRow } from "../context.js";
import { recordAudit } from "./audit.js";
import { connectionOf } from "./prepared.js";

const keySetting = "install_progress_key";

/** Installer events kept per machine (the newest), and bytes of uploaded logs kept per machine (the newest). */
export const installerBounds = { events: 500, logBytes: 1024 * 1024 } as const;

/** The key never changes once stored: read once per connection (every user-data answer needs it). */
const keys = new WeakMap<object, Buffer>();

function progressKey(db: Queryable): Buffer {
  const connection = connectionOf(db);
  const known = keys.get(connection);
  if (known) return known;
  const key = readOrMakeProgressKey(db);
  // Inside a transaction the key may still roll back with it: kept only once it is committed.
  if (!connection.inTransaction) keys.set(connection, key);
  return key;
}

function readOrMakeProgressKey(db: Queryable): Buffer {
  const row = db.select().from(settings).where(eq(settings.key, keySetting)).get();
  if (row) return Buffer.from(row.value, "base64url");
  const key = randomBytes(32);
  // Two first uses racing: the first insert wins and both read it back.
  db.insert(settings)
    .values({ key: keySetting, value: key.toString("base64url") })
    .onConflictDoNothing()
    .run();
  return Buffer.from(db.select().from(settings).where(eq(settings.key, keySetting)).get()!.value, "base64url");
}

function tokenOf(key: Buffer, m: Pick<MachineRow, "id" | "mac" | "installGeneration">): string {
  return createHmac("sha256", key).update(`install-progress:${m.id}:${m.mac}:${m.installGeneration}`).digest("base64url");
}

/** The progress token of the machine's current install (the same on every call until a reinstall). */
export function progressTokenFor(db: Queryable, m: Pick<MachineRow, "id" | "mac" | "installGeneration">): string {
  return tokenOf(progressKey(db), m);
}

/** The machine this token was issued to in its current install, or undefined; the comparison takes constant time. */
export function machineForProgressToken(db: Queryable, mac: string, token: string): MachineRow | undefined {
  const m = db.select().from(machines).where(eq(machines.mac, mac)).get();
  // Compare even when there is no machine, so an unknown MAC costs the same time.
  const expected = Buffer.from(tokenOf(progressKey(db), m ?? { id: 0, mac, installGeneration: 0 }));
  const presented = Buffer.from(token);
  const same = expected.length === presented.length && timingSafeEqual(expected, presented);
  return m && same ? m : undefined;
}

/** One thing the installer told us: a reporting event or an uploaded log; `finished` = its final success. */
export type InstallerEvent = { type: string; detail: string; failed: boolean; finished?: boolean };

/**
 * Store one installer event, then drop the machine's oldest installer events past the bounds
 * (count, and bytes of logs): a token holder cannot grow the database without limit. A failure
 * is also audited; the final success marks the install done, so later PXE boots get the disk.
 */
export function recordInstallerEvent(
  db: Db,
  machine: MachineRow,
  event: InstallerEvent,
  at: { now: number; ip: string },
  /** Whether a failure may still be audited (the token is in the public seed: its audits are bounded like refusals). */
  mayAudit: () => boolean = () => true,
): void {
  db.transaction(
    (tx) => {
      tx.insert(nodeEvents).values({ machineId: machine.id, at: at.now, source: "installer", type: event.type, detail: event.detail }).run();
      trimInstallerEvents(tx, machine.id);
      if (event.failed) {
        // A flag on the machine (`install_failed`, a `nodes` filter) until its next enroll clears it.
        tx.update(machines).set({ installFailedAt: at.now }).where(eq(machines.id, machine.id)).run();
        if (mayAudit())
          recordAudit(tx, {
            at: at.now,
            actor: `machine:${machine.id}`,
            sourceIp: at.ip,
            action: "machine.install_failed",
            machineId: machine.id,
            clusterId: machine.clusterId,
            detail: { type: event.type, detail: event.detail.slice(0, 200) },
          });
      }
      const current = tx.select().from(machines).where(eq(machines.id, machine.id)).get();
      if (event.finished && current && current.installedAt === null && current.installGeneration === machine.installGeneration) {
        tx.update(machines).set({ installedAt: at.now }).where(eq(machines.id, machine.id)).run();
        recordAudit(tx, {
          at: at.now,
          actor: `machine:${machine.id}`,
          sourceIp: at.ip,
          action: "machine.installed",
          machineId: machine.id,
          clusterId: machine.clusterId,
          detail: { install_generation: machine.installGeneration, event: event.detail.slice(0, 200) },
        });
      }
    },
    { behavior: "immediate" },
  );
}

function trimInstallerEvents(tx: Queryable, machineId: number): void {
  const mine = and(eq(nodeEvents.machineId, machineId), eq(nodeEvents.source, "installer"));
  const count = tx.select({ n: sql<number>`count(*)` }).from(nodeEvents).where(mine).get()?.n ?? 0;
  if (count > installerBounds.events) {
    const oldest = tx
      .select({ id: nodeEvents.id })
      .from(nodeEvents)
      .where(mine)
      .orderBy(asc(nodeEvents.id))
      .limit(count - installerBounds.events)
      .all();
    tx.delete(nodeEvents)
      .where(
        inArray(
          nodeEvents.id,
          oldest.map((r) => r.id),
        ),
      )
      .run();
  }
  const logs = and(mine, eq(nodeEvents.type, "log"));
  let bytes =
    tx
      .select({ n: sql<number>`coalesce(sum(length(cast(${nodeEvents.detail} as blob))), 0)` })
      .from(nodeEvents)
      .where(logs)
      .get()?.n ?? 0;
  while (bytes > installerBounds.logBytes) {
    const oldest = tx
      .select({ id: nodeEvents.id, n: sql<number>`length(cast(${nodeEvents.detail} as blob))` })
      .from(nodeEvents)
      .where(and(logs, gt(nodeEvents.id, 0)))
      .orderBy(asc(nodeEvents.id))
      .limit(1)
      .get();
    if (!oldest) break;
    tx.delete(nodeEvents).where(eq(nodeEvents.id, oldest.id)).run();
    bytes -= oldest.n;
  }
}
