/**
 * Reading a machine's story, oldest first, a page at a time, for `GET /api/v1/nodes/:id/timeline`.
 * The story merges five sources: what the machine fetched (`timeline_entries`, its own rows and
 * the TFTP rows of the addresses it used), what happened to it (the audit log), what it reported
 * (`node_events`) and its newest syslog lines. A line's place is (time, lane, row id), the lane
 * being its source: each source is read past the cursor's place on its own index, and the merge
 * keeps the first `limit`, so a page costs a few range scans however long the story is.
 *
 * A repeated request (202 config polls) is one stored row with a count (`store/timeline.ts`), so
 * it is one line placed at its first time: it never splits across pages and never shows twice. A
 * page shows its count as of the read; only the machine's newest row still grows.
 */
import { and, asc, desc, eq, gt, gte, inArray, isNull, lt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Queryable } from "../../db/client.js";
import { auditEvents, machines, nodeEvents, syslogMessages, timelineEntries } from "../../db/schema.js";
import { maxDetailLength } from "./timeline.js";

/** One line of the timeline as the API answers it. */
export type TimelineItem = { at: string; kind: string; detail: string; count?: number; last_at?: string };

/** Where a line sits in the story: its time (ms), its source's lane, its row id. A page starts past one. */
export type TimelinePlace = { ms: number; lane: number; id: number };

/** One page of a story: its lines and where the next page starts (null on the last page). */
export type TimelinePage = { items: TimelineItem[]; next: TimelinePlace | null };

/**
 * The sources, in the order lines of the same millisecond are told: the pointer to earlier syslog
 * first, then the request, then the decision, then the report.
 */
export const lanes = { syslogEarlier: 0, own: 1, tftp: 2, audit: 3, event: 4, syslog: 5 } as const;

/** Newest syslog lines a timeline shows; all of them are at GET /api/v1/nodes/:id/syslog. */
export const maxSyslogItems = 100;
/** Lines the console's machine page shows (the newest). */
export const maxTimelineItems = 1000;
/** Addresses whose TFTP rows a story includes (its last address and those of its own rows). */
const maxAddresses = 20;

// The same cleaning as writes: reports and syslog lines are stored as sent.
const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, maxDetailLength);
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

/** Rows of one lane past `after`: later, or at the same time in a later lane, or the same time and lane with a larger id. */
function pastPlace(at: SQLiteColumn, id: SQLiteColumn, lane: number, after: TimelinePlace | undefined): SQL | undefined {
  if (!after) return undefined;
  if (lane > after.lane) return gte(at, after.ms);
  if (lane < after.lane) return gt(at, after.ms);
  return or(gt(at, after.ms), and(eq(at, after.ms), gt(id, after.id)));
}

type Placed = TimelineItem & TimelinePlace;

const before = (x: TimelinePlace, y: TimelinePlace) => x.ms - y.ms || x.lane - y.lane || x.id - y.id;

/**
 * One page of the machine's timeline, oldest first, starting past `after`; undefined when there is
 * no such machine. Each source is asked for `limit + 1` rows past the place, which is enough: the
 * first `limit` lines of the merge are among them, and one more says another page follows.
 */
export function machineTimelinePage(db: Queryable, machineId: number, page: { limit: number; after?: TimelinePlace | undefined }): TimelinePage | undefined {
  const m = db.select({ id: machines.id, lastIp: machines.lastIp }).from(machines).where(eq(machines.id, machineId)).get();
  if (!m) return undefined;
  const { after } = page;
  const n = page.limit + 1;
  const items: Placed[] = [];
  const repeat = (e: { count: number; lastAt: number }) => (e.count > 1 ? { count: e.count, last_at: iso(e.lastAt) } : {});

  const own = db
    .select()
    .from(timelineEntries)
    .where(and(eq(timelineEntries.machineId, machineId), pastPlace(timelineEntries.firstAt, timelineEntries.id, lanes.own, after)))
    .orderBy(asc(timelineEntries.firstAt), asc(timelineEntries.id))
    .limit(n)
    .all();
  for (const e of own) items.push({ ms: e.firstAt, lane: lanes.own, id: e.id, at: iso(e.firstAt), kind: e.kind, detail: e.detail, ...repeat(e) });

  // TFTP knows addresses, not machines: the transfers from every address this machine used.
  const used = db
    .selectDistinct({ ip: timelineEntries.sourceIp })
    .from(timelineEntries)
    .where(eq(timelineEntries.machineId, machineId))
    .limit(maxAddresses)
    .all();
  const ips = [...new Set([m.lastIp, ...used.map((r) => r.ip)].filter((ip): ip is string => !!ip))].slice(0, maxAddresses);
  if (ips.length > 0) {
    const tftp = db
      .select()
      .from(timelineEntries)
      .where(
        and(
          isNull(timelineEntries.machineId),
          inArray(timelineEntries.sourceIp, ips),
          pastPlace(timelineEntries.firstAt, timelineEntries.id, lanes.tftp, after),
        ),
      )
      .orderBy(asc(timelineEntries.firstAt), asc(timelineEntries.id))
      .limit(n)
      .all();
    for (const e of tftp) {
      items.push({ ms: e.firstAt, lane: lanes.tftp, id: e.id, at: iso(e.firstAt), kind: e.kind, detail: `${e.detail} (from ${e.sourceIp})`, ...repeat(e) });
    }
  }

  const audit = db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.machineId, machineId), pastPlace(auditEvents.at, auditEvents.id, lanes.audit, after)))
    .orderBy(asc(auditEvents.at), asc(auditEvents.id))
    .limit(n)
    .all();
  for (const a of audit) items.push({ ms: a.at, lane: lanes.audit, id: a.id, at: iso(a.at), kind: auditKind(a.action), detail: auditDetail(a) });

  const events = db
    .select()
    .from(nodeEvents)
    .where(and(eq(nodeEvents.machineId, machineId), pastPlace(nodeEvents.at, nodeEvents.id, lanes.event, after)))
    .orderBy(asc(nodeEvents.at), asc(nodeEvents.id))
    .limit(n)
    .all();
  for (const e of events) {
    const detail = [e.type, e.detail ? clean(e.detail) : ""].filter(Boolean).join(": ");
    items.push({ ms: e.at, lane: lanes.event, id: e.id, at: iso(e.at), kind: e.source === "installer" ? "installer" : "event", detail });
  }

  // Only the newest syslog lines belong to the story: from the oldest of them on, plus one line
  // saying where the earlier ones are. The window moves as lines arrive, so a walk through the
  // pages while a machine logs may miss lines that left it; the syslog endpoint has them all.
  const oldestShown = db
    .select({ id: syslogMessages.id, receivedAt: syslogMessages.receivedAt })
    .from(syslogMessages)
    .where(eq(syslogMessages.machineId, machineId))
    .orderBy(desc(syslogMessages.id))
    .limit(1)
    .offset(maxSyslogItems - 1)
    .get();
  const earlier =
    oldestShown !== undefined &&
    db
      .select({ id: syslogMessages.id })
      .from(syslogMessages)
      .where(and(eq(syslogMessages.machineId, machineId), lt(syslogMessages.id, oldestShown.id)))
      .limit(1)
      .get() !== undefined;
  const pointer = earlier ? { ms: oldestShown.receivedAt, lane: lanes.syslogEarlier, id: 0 } : undefined;
  if (pointer && (!after || before(after, pointer) < 0)) {
    items.push({ ...pointer, at: iso(pointer.ms), kind: "syslog", detail: `earlier lines: GET /api/v1/nodes/${machineId}/syslog` });
  }
  const syslog = db
    .select()
    .from(syslogMessages)
    .where(
      and(
        eq(syslogMessages.machineId, machineId),
        oldestShown ? gte(syslogMessages.id, oldestShown.id) : undefined,
        pastPlace(syslogMessages.receivedAt, syslogMessages.id, lanes.syslog, after),
      ),
    )
    .orderBy(asc(syslogMessages.receivedAt), asc(syslogMessages.id))
    .limit(n)
    .all();
  for (const l of syslog) {
    items.push({
      ms: l.receivedAt,
      lane: lanes.syslog,
      id: l.id,
      at: iso(l.receivedAt),
      kind: "syslog",
      detail: clean([l.app, l.message].filter(Boolean).join(": ")),
    });
  }

  items.sort(before);
  const shown = items.slice(0, page.limit);
  const last = shown[shown.length - 1];
  return {
    items: shown.map(({ ms: _ms, lane: _lane, id: _id, ...line }) => line),
    next: items.length > page.limit && last ? { ms: last.ms, lane: last.lane, id: last.id } : null,
  };
}

/**
 * The newest `maxTimelineItems` lines, oldest first, for the console's machine page; undefined when
 * there is no such machine. `truncated` says older lines were left out (the API pages to them).
 */
export function machineTimeline(db: Queryable, machineId: number): { timeline: TimelineItem[]; truncated: boolean } | undefined {
  let lines: TimelineItem[] = [];
  let truncated = false;
  let after: TimelinePlace | undefined;
  // Bounded: every source is capped or rate-limited per machine, so a story is a few pages.
  for (let i = 0; i < 100; i++) {
    const page = machineTimelinePage(db, machineId, { limit: maxTimelineItems, after });
    if (!page) return i === 0 ? undefined : { timeline: lines, truncated };
    lines = [...lines, ...page.items];
    if (lines.length > maxTimelineItems) {
      lines = lines.slice(-maxTimelineItems);
      truncated = true;
    }
    if (!page.next) break;
    after = page.next;
  }
  return { timeline: lines, truncated };
}
