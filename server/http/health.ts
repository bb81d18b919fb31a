/**
 * Liveness and readiness for monitoring. `/healthz`: the process answers HTTP. `/readyz`: it can
 * also do its job: the database takes writes and every listener main started is bound.
 */
import { Hono } from "hono";
import type { Db } from "../../db/client.js";
import type { AppEnv } from "../context.js";

/** Why the database would refuse a write now, or undefined when it would not. */
function databaseProblem(db: Db): string | undefined {
  const sqlite = db.$client;
  try {
    const version = sqlite.pragma("user_version", { simple: true }) as number;
    // Takes the write lock (waiting as long as any write would); a transaction left open on this
    // connection, or another process holding the lock, fails here.
    sqlite.exec("BEGIN IMMEDIATE");
    try {
      // A write, rolled back: a read-only file fails here, which BEGIN alone does not notice.
      sqlite.pragma(`user_version = ${version}`);
    } finally {
      sqlite.exec("ROLLBACK");
    }
    return undefined;
  } catch (err) {
    return `the database does not take writes: ${(err as Error).message}`;
  }
}

export const healthRoutes = new Hono<AppEnv>()
  .get("/healthz", (c) => c.json({ status: "ok" }))
  .get("/readyz", (c) => {
    const { db, readiness, logger } = c.var.deps;
    // No readiness callback (an app built by a test, with no listeners of its own) counts as ready.
    const listeners = readiness?.() ?? { ready: true };
    const problem = databaseProblem(db) ?? (listeners.ready ? undefined : listeners.reason);
    c.header("cache-control", "no-store");
    if (problem === undefined) return c.json({ status: "ready" });
    logger.warn({ reason: problem }, "not ready");
    return c.json({ error: "not_ready", message: problem, requestId: c.var.requestId }, 503);
  });
