/** `GET /api/v1/nodes/:id/timeline` (admin): one machine's story, oldest first. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { machineTimeline } from "../store/timeline.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { machineFromRef, machineRefParam } from "./middleware/machine-ref.js";
import { validate } from "./middleware/validate.js";

/** The timeline route, admin only; the machine by id, MAC or serial, as every node route. */
export const timelineRoutes = new Hono<AppEnv>().get("/api/v1/nodes/:id/timeline", adminAuth, validate("param", machineRefParam), (c) => {
  const { db } = c.var.deps;
  const { id } = machineFromRef(db, c.req.valid("param").id);
  // The machine exists (found above), so its story does.
  const story = machineTimeline(db, id)!;
  return c.json({ node_id: id, timeline: story.timeline, truncated: story.truncated });
});
