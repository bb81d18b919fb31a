/** Liveness and readiness for monitoring. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";

export const healthRoutes = new Hono<AppEnv>()
  .get("/healthz", (c) => c.json({ status: "ok" }))
  .get("/readyz", (c) => {
    // Ready means the database answers; a locked or vanished file shows here first.
    c.var.deps.db.$client.prepare("select 1").get();
    return c.json({ status: "ready" });
  });
