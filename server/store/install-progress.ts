/**
 * The installer's progress webhook: a narrow per-machine token (only its SHA-256 is kept) that
 * can do nothing but add installer events to that one machine's record.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, nodeEvents } from "../../db/schema.js";
import type { MachineRow } from "../context.js";
import { recordAudit } from "./audit.js";

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A fresh progress token for the machine; the previous one stops working. Returns the token itself. */
export function issueProgressToken(db: Queryable, machineId: number): string {
  const token = randomBytes(32).toString("base64url");
  db.update(machines)
    .set({ progressTokenHash: sha256Hex(token) })
    .where(eq(machines.id, machineId))
    .run();
  return token;
}

/** The machine this token was issued to, or undefined; the hash comparison takes constant time. */
export function machineForProgressToken(db: Queryable, mac: string, token: string): MachineRow | undefined {
  const m = db.select().from(machines).where(eq(machines.mac, mac)).get();
  // Hash even when there is nothing to compare with, so an unknown MAC costs the same time.
  const presented = Buffer.from(sha256Hex(token), "hex");
  const stored = Buffer.from(m?.progressTokenHash ?? "0".repeat(64), "hex");
  const same = stored.length === presented.length && timingSafeEqual(stored, presented);
  return m?.progressTokenHash && same ? m : undefined;
}

/** One thing the installer told us: a reporting event or an uploaded log. */
export type InstallerEvent = { type: string; detail: string; failed: boolean };

/** Store one installer event; a failure (FAIL result or an uploaded error log) is also audited. */
export function recordInstallerEvent(db: Db, machine: MachineRow, event: InstallerEvent, at: { now: number; ip: string }): void {
  db.transaction((tx) => {
    tx.insert(nodeEvents).values({ machineId: machine.id, at: at.now, source: "installer", type: event.type, detail: event.detail }).run();
    if (event.failed) {
      // A flag on the machine (`install_failed`, a `nodes` filter) until its next enroll clears it.
      tx.update(machines).set({ installFailedAt: at.now }).where(eq(machines.id, machine.id)).run();
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
  });
}
