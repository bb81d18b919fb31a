/**
 * `GET /api/v1/nodes/:id/timeline` (admin): one machine's story, oldest first, paged as every list
 * (`limit`, `cursor`, `next_cursor`). A line's place is a time, a source and a row id, so the
 * cursor carries all three (opaque to clients, like every cursor).
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../context.js";
import { lanes, machineTimelinePage, type TimelinePlace } from "../store/timeline-read.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { machineFromRef, machineRefParam } from "./middleware/machine-ref.js";
import { defaultPageSize, pageLimit } from "./middleware/pagination.js";
import { validate } from "./middleware/validate.js";

const cursorPrefix = "t1:";
const maxLane = Math.max(...Object.values(lanes));

/** The cursor a client sends back for the page after the line at `p`. */
export function encodeTimelineCursor(p: TimelinePlace): string {
  return Buffer.from(`${cursorPrefix}${p.ms}.${p.lane}.${p.id}`, "utf8").toString("base64url");
}

/** The place a cursor stands for, or undefined when it is not one edgejoin gave. */
export function decodeTimelineCursor(cursor: string): TimelinePlace | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return undefined;
  const m = /^t1:(\d{1,15})\.(\d)\.(\d{1,15})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!m || Number(m[2]) > maxLane) return undefined;
  return { ms: Number(m[1]), lane: Number(m[2]), id: Number(m[3]) };
}

const timelineQuery = z
  .object({
    limit: pageLimit,
    cursor: z
      .string()
      .transform((c, ctx) => {
        const place = decodeTimelineCursor(c);
        if (!place) {
          ctx.addIssue({ code: "custom", message: "cursor must be a next_cursor value from an earlier page of this timeline" });
          return z.NEVER;
        }
        return place;
      })
      .optional(),
  })
  .strict();

/** The timeline route, admin only; the machine by id, MAC or serial, as every node route. */
export const timelineRoutes = new Hono<AppEnv>().get(
  "/api/v1/nodes/:id/timeline",
  adminAuth,
  validate("param", machineRefParam),
  validate("query", timelineQuery),
  (c) => {
    const { db } = c.var.deps;
    const { id } = machineFromRef(db, c.req.valid("param").id);
    const q = c.req.valid("query");
    // The machine exists (found above), so its story does.
    const page = machineTimelinePage(db, id, { limit: q.limit ?? defaultPageSize, after: q.cursor })!;
    return c.json({ node_id: id, timeline: page.items, next_cursor: page.next ? encodeTimelineCursor(page.next) : null });
  },
);
