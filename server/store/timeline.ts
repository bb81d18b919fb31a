/**
 * Writing a machine's story: what it fetched (TFTP by its address, `/boot.ipxe`, seed files,
 * config polls: `timeline_entries`); `store/timeline-read.ts` merges it with the audit log and
 * what the machine reported, for `GET /api/v1/nodes/:id/timeline`. Storage stays bounded: a
 * repeat of the newest entry is a count, not a row; rows past a cap per machine and per address are dropped oldest first.
 */
import { and, desc, eq, isNull, lte, sql } from "drizzle-orm";
import type { Db, Queryable, Tx } from "../../db/client.js";
import { deferWrite } from "./deferred.js";
import { prepared } from "./prepared.js";
import { timelineEntries } from "../../db/schema.js";

/** Kinds recorded here; the others come from the audit log and node events. */
export type ActivityKind = "tftp" | "boot" | "seed" | "config" | "syslog";

/** Rows kept per machine (a whole install is a few dozen distinct steps; polls collapse). */
export const maxEntriesPerMachine = 200;
/** Rows kept per address for TFTP, which knows no machine. */
export const maxEntriesPerAddress = 50;
/** Address-only rows kept in all: a LAN neighbour spraying TFTP from many addresses cannot grow the file. */
export const maxAddressEntries = 20_000;
/** Longest detail stored; a longer one is cut. */
export const maxDetailLength = 300;

const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, maxDetailLength);

const newestOfMachine = (q: Queryable) =>
  q
    .select()
    .from(timelineEntries)
    .where(eq(timelineEntries.machineId, sql.placeholder("machineId")))
    .orderBy(desc(timelineEntries.id))
    .limit(1)
    .prepare();
const newestOfAddress = (q: Queryable) =>
  q
    .select()
    .from(timelineEntries)
    .where(and(isNull(timelineEntries.machineId), eq(timelineEntries.sourceIp, sql.placeholder("ip"))))
    .orderBy(desc(timelineEntries.id))
    .limit(1)
    .prepare();
const bump = (q: Queryable) =>
  q
    .update(timelineEntries)
    .set({ count: sql`${timelineEntries.count} + 1`, lastAt: sql.placeholder("lastAt") as unknown as number })
    .where(eq(timelineEntries.id, sql.placeholder("id")))
    .prepare();
const insertEntry = (q: Queryable) =>
  q
    .insert(timelineEntries)
    .values({
      machineId: sql.placeholder("machineId"),
      sourceIp: sql.placeholder("ip"),
      kind: sql.placeholder("kind"),
      detail: sql.placeholder("detail"),
      firstAt: sql.placeholder("at"),
      lastAt: sql.placeholder("at"),
    })
    .prepare();
// Each drops the rows of its owner past the newest `keep` (the row at offset `keep`, found on its index, and every older one).
const trimMachine = (q: Queryable) =>
  q
    .delete(timelineEntries)
    .where(
      and(
        eq(timelineEntries.machineId, sql.placeholder("machineId")),
        lte(
          timelineEntries.id,
          sql`(select id from ${timelineEntries} where ${timelineEntries.machineId} = ${sql.placeholder("machineId")} order by id desc limit 1 offset ${maxEntriesPerMachine})`,
        ),
      ),
    )
    .prepare();
const trimAddress = (q: Queryable) =>
  q
    .delete(timelineEntries)
    .where(
      and(
        isNull(timelineEntries.machineId),
        eq(timelineEntries.sourceIp, sql.placeholder("ip")),
        lte(
          timelineEntries.id,
          sql`(select id from ${timelineEntries} where ${timelineEntries.machineId} is null and ${timelineEntries.sourceIp} = ${sql.placeholder("ip")} order by id desc limit 1 offset ${maxEntriesPerAddress})`,
        ),
      ),
    )
    .prepare();
const trimAllAddresses = (q: Queryable) =>
  q
    .delete(timelineEntries)
    .where(
      and(
        isNull(timelineEntries.machineId),
        lte(
          timelineEntries.id,
          sql`(select id from ${timelineEntries} where ${timelineEntries.machineId} is null order by id desc limit 1 offset ${maxAddressEntries})`,
        ),
      ),
    )
    .prepare();

type Activity = { machineId: number | null; ip: string | null; kind: ActivityKind; detail: string; at: number };

/** One activity into the timeline, inside the flush's transaction. */
function writeActivity(tx: Tx, a: Activity): void {
  const newest = a.machineId === null ? prepared(tx, newestOfAddress).get({ ip: a.ip }) : prepared(tx, newestOfMachine).get({ machineId: a.machineId });
  if (newest && newest.kind === a.kind && newest.detail === a.detail && newest.sourceIp === a.ip) {
    prepared(tx, bump).run({ id: newest.id, lastAt: a.at });
    return;
  }
  prepared(tx, insertEntry).run({ machineId: a.machineId, ip: a.ip, kind: a.kind, detail: a.detail, at: a.at });
  if (a.machineId !== null) prepared(tx, trimMachine).run({ machineId: a.machineId });
  else prepared(tx, trimAddress).run({ ip: a.ip });
}

/**
 * Record one thing a machine (or, for TFTP, an address) did. The same kind and detail as its
 * newest entry bumps that entry's count (202 polls become one line); anything else is a new row.
 * Written with the next flush of deferred writes (`store/deferred.ts`), not by this call.
 */
export function noteActivity(db: Db, a: Activity): void {
  if (a.machineId === null && !a.ip) return;
  const activity = { ...a, ip: a.ip || null, detail: clean(a.detail) };
  deferWrite(db, (tx) => writeActivity(tx, activity));
  // The cap on all address-only rows walks 20,000 index entries: once per flush is enough.
  if (a.machineId === null) deferWrite(db, (tx) => prepared(tx, trimAllAddresses).run(), "timeline:trim-addresses");
}

/** A TFTP transfer, filed under the client's address; never throws (TFTP must keep serving). */
export function recordTftpTransfer(db: Db, t: { file: string; address: string; result: string; bytes: number; at: number }): void {
  try {
    const detail = t.result === "done" ? `${t.file} sent (${t.bytes} bytes)` : `${t.file} ${t.result.replace("_", " ")}`;
    noteActivity(db, { machineId: null, ip: t.address.replace(/^::ffff:/, ""), kind: "tftp", detail, at: t.at });
  } catch {
    // A busy or closed database costs a timeline line, not a boot.
  }
}
