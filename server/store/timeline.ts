/**
 * A machine's story, oldest first, for `GET /api/v1/nodes/:id/timeline`: what it fetched (TFTP by
 * its address, `/boot.ipxe`, seed files, config polls: `timeline_entries`), what happened to it
 * (the audit log: enroll, refusals, conflicts, approvals, decisions, quorum) and what it reported
 * (`node_events`: installer and agent). Storage stays bounded: a repeat of the newest entry is a
 * count, not a row; rows past a cap per machine and per address are dropped oldest first.
 */
import { and, asc, desc, eq, inArray, isNull, lte, sql } from "drizzle-orm";
import type { Db, Queryable, Tx } from "../../db/client.js";
import { deferWrite } from "./deferred.js";
import { prepared } from "./prepared.js";
import { auditEvents, machines, nodeEvents, syslogMessages, timelineEntries } from "../../db/schema.js";

/** Kinds recorded here; the others come from the audit log and node events. */
export type ActivityKind = "tftp" | "boot" | "seed" | "config" | "syslog";

/** One line of the timeline as the API answers it. */
export type TimelineItem = { at: string; kind: string; detail: string; count?: number; last_at?: string };

/** Rows kept per machine (a whole install is a few dozen distinct steps; polls collapse). */
export const maxEntriesPerMachine = 200;
/** Rows kept per address for TFTP, which knows no machine. */
export const maxEntriesPerAddress = 50;
/** Address-only rows kept in all: a LAN neighbour spraying TFTP from many addresses cannot grow the file. */
export const maxAddressEntries = 20_000;
/** Longest detail stored; a longer one is cut. */
export const maxDetailLength = 300;
/** Newest syslog lines a timeline shows; all of them are at GET /api/v1/nodes/:id/syslog. */
export const maxSyslogItems = 100;
/** Most lines one timeline answer carries (the newest; `truncated` says when older ones were left out). */
export const maxTimelineItems = 1000;

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

const iso = (ms: number) => new Date(ms).toISOString();

/** An audit action as a timeline kind. */
function auditKind(action: string): string {
  if (action === "machine.approved") return "approved";
  if (action === "enroll.conflict" || action === "enroll.identity_conflict" || action === "machine.conflicts_dismissed") return "conflict";
  if (action.startsWith("enroll.") || action === "machine.enrolled") return "enroll";
  if (action === "machine.install_failed") return "installer";
  if (action.startsWith("quorum.")) return "quorum";
  if (action === "machine.discovered") return "boot";
  return "decision";
}

/** An audit record in words: what, by whom, from where, with its detail's telling fields. */
function auditDetail(a: typeof auditEvents.$inferSelect): string {
  const d = (a.detail ?? {}) as Record<string, unknown>;
  const parts: string[] = [a.action];
  if (a.action === "machine.approved") parts.push(`by ${a.actor}`);
  else if (a.actor !== "anonymous" && a.actor !== "system" && !a.actor.startsWith("machine:")) parts.push(`by ${a.actor}`);
  if (a.sourceIp) parts.push(`from ${a.sourceIp}`);
  for (const key of ["code", "from", "state", "role", "reason", "via", "hostname", "why"]) {
    const v = d[key];
    if (typeof v === "string" || typeof v === "number") parts.push(`${key}=${v}`);
  }
  return parts.join(" ");
}

/** The machine's timeline, oldest first; undefined when there is no such machine. */
export function machineTimeline(db: Db, machineId: number): { timeline: TimelineItem[]; truncated: boolean } | undefined {
  const m = db.select({ id: machines.id, lastIp: machines.lastIp }).from(machines).where(eq(machines.id, machineId)).get();
  if (!m) return undefined;
  const items: (TimelineItem & { ms: number; order: number })[] = [];
  const own = db.select().from(timelineEntries).where(eq(timelineEntries.machineId, machineId)).orderBy(asc(timelineEntries.id)).all();
  for (const e of own) {
    items.push({
      ms: e.firstAt,
      order: 0,
      at: iso(e.firstAt),
      kind: e.kind,
      detail: e.detail,
      ...(e.count > 1 ? { count: e.count, last_at: iso(e.lastAt) } : {}),
    });
  }
  // TFTP knows addresses, not machines: the transfers from every address this machine used.
  const ips = [...new Set([m.lastIp, ...own.map((e) => e.sourceIp)].filter((ip): ip is string => !!ip))];
  if (ips.length > 0) {
    const tftp = db
      .select()
      .from(timelineEntries)
      .where(and(isNull(timelineEntries.machineId), inArray(timelineEntries.sourceIp, ips.slice(0, 20))))
      .all();
    for (const e of tftp) {
      items.push({
        ms: e.firstAt,
        order: 0,
        at: iso(e.firstAt),
        kind: e.kind,
        detail: `${e.detail} (from ${e.sourceIp})`,
        ...(e.count > 1 ? { count: e.count, last_at: iso(e.lastAt) } : {}),
      });
    }
  }
  const audit = db.select().from(auditEvents).where(eq(auditEvents.machineId, machineId)).orderBy(desc(auditEvents.id)).limit(maxTimelineItems).all();
  for (const a of audit) items.push({ ms: a.at, order: 1, at: iso(a.at), kind: auditKind(a.action), detail: auditDetail(a) });
  const events = db.select().from(nodeEvents).where(eq(nodeEvents.machineId, machineId)).orderBy(desc(nodeEvents.id)).limit(maxTimelineItems).all();
  for (const e of events) {
    const detail = [e.type, e.detail ? clean(e.detail) : ""].filter(Boolean).join(": ");
    items.push({ ms: e.at, order: 2, at: iso(e.at), kind: e.source === "installer" ? "installer" : "event", detail });
  }
  const syslog = db
    .select()
    .from(syslogMessages)
    .where(eq(syslogMessages.machineId, machineId))
    .orderBy(desc(syslogMessages.id))
    .limit(maxSyslogItems + 1)
    .all();
  for (const l of syslog.slice(0, maxSyslogItems)) {
    items.push({ ms: l.receivedAt, order: 2, at: iso(l.receivedAt), kind: "syslog", detail: clean([l.app, l.message].filter(Boolean).join(": ")) });
  }
  if (syslog.length > maxSyslogItems) {
    const oldest = syslog[maxSyslogItems - 1]!;
    items.push({
      ms: oldest.receivedAt,
      order: -1,
      at: iso(oldest.receivedAt),
      kind: "syslog",
      detail: `earlier lines: GET /api/v1/nodes/${machineId}/syslog`,
    });
  }
  // Stable: same millisecond keeps request, then decision, then report.
  items.sort((x, y) => x.ms - y.ms || x.order - y.order);
  const truncated = items.length > maxTimelineItems;
  return { timeline: items.slice(-maxTimelineItems).map(({ ms: _ms, order: _order, ...rest }) => rest), truncated };
}
