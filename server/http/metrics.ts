/** `GET /metrics`: Prometheus text from this app's own registry. No token: monitoring scrapes it. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";

export const metricsRoutes = new Hono<AppEnv>().get("/metrics", async (c) => {
  const { registry } = c.var.deps.metrics;
  return c.body(await registry.metrics(), 200, { "content-type": registry.contentType, "cache-control": "no-store" });
});
