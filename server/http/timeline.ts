/** `GET /api/v1/nodes/:id/timeline` (admin): one machine's story, oldest first. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { ApiError } from "../errors.js";
import { machineTimeline } from "../store/timeline.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { idParam, validate } from "./middleware/validate.js";

/** The timeline route, admin only. */
export const timelineRoutes = new Hono<AppEnv>().get("/api/v1/nodes/:id/timeline", adminAuth, validate("param", idParam), (c) => {
  const { id } = c.req.valid("param");
  const story = machineTimeline(c.var.deps.db, id);
  if (!story) throw new ApiError("not_found", `no machine with id ${id}`);
  return c.json({ node_id: id, timeline: story.timeline, truncated: story.truncated });
});
