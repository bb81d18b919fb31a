/**
 * What an operator and Prometheus see of each request, in one middleware: a JSON log line with
 * the request id (`info` for admin actions, `debug` for the machines' own traffic), the HTTP
 * metrics under the route pattern (never the raw path, which holds MACs), and the operator events.
 *
 * Operator events have one source: the audit log. After each request the audit records written
 * since the last look are logged (`info`, or `warn` for what needs a person), so the store never
 * logs and a new audit action is logged without touching this file. The two things a person
 * watches for that are no audit record (an installer served, a missing artifact) are read off the
 * request's outcome here.
 */
import { createMiddleware } from "hono/factory";
import type { Logger } from "pino";
import type { AppEnv, Deps } from "../../context.js";
import { ApiError } from "../../errors.js";
import { handleError } from "../error-handler.js";
import { auditSince, auditWrites, lastAuditId } from "../../store/audit.js";

/** Audit actions that need a person's attention: logged at `warn`, the rest at `info`. */
const warnActions = new Set([
  "machine.install_failed",
  "machine.failure_reported",
  "quorum.split_brain_risk",
  "quorum.seat_revoked",
  "enroll.identity_conflict",
  "enroll.refused",
  "admin.sign_in_failed",
]);

/** Routes whose requests are an admin acting (logged at info); machines' polling stays at debug. */
function isAdminRoute(route: string, method: string): boolean {
  if (route.startsWith("/ui")) return method === "POST";
  return route.startsWith("/api/v1/") && !route.startsWith("/api/v1/node/") && route !== "/api/v1/enroll";
}

/** Logs audit records written since the last call, oldest first. */
export function auditFollower(db: Deps["db"], logger: Logger): () => void {
  let after = lastAuditId(db);
  // Most requests write no audit record: the log is read only when this process wrote one (a
  // record written by another process, such as the CLI on the data folder, is logged with the next).
  let seen = auditWrites(db);
  return () => {
    const writes = auditWrites(db);
    if (writes === seen) return;
    // Bounded: a burst bigger than this is logged over the next requests.
    const batch = auditSince(db, after, 500);
    if (batch.length < 500) seen = writes;
    for (const a of batch) {
      after = a.id;
      const line = {
        audit: a.action,
        actor: a.actor,
        machineId: a.machineId ?? undefined,
        clusterId: a.clusterId ?? undefined,
        ip: a.sourceIp ?? undefined,
        detail: a.detail ?? undefined,
      };
      if (warnActions.has(a.action)) logger.warn(line, a.action.replace(/[._]/g, " "));
      else logger.info(line, a.action.replace(/[._]/g, " "));
    }
  };
}

/** The request middleware createApp puts first. */
export function observe(deps: Deps) {
  const followAudit = auditFollower(deps.db, deps.logger);
  const { metrics, logger } = deps;
  return createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } catch (err) {
      // hono hands an error thrown by notFound (no route matched) to the middleware that called
      // next(): answer it here as app.onError would, so it is counted and logged like any other.
      if (!(err instanceof Error)) throw err;
      c.error = err;
      c.res = handleError(err, c);
    }
    const seconds = (performance.now() - started) / 1000;
    const status = c.res.status;
    const method = c.req.method;
    // After next() routePath is the pattern of the handler that answered; "/*" when none matched.
    const matched = c.req.routePath;
    const route = matched === "/*" && status === 404 ? "(unmatched)" : matched;
    metrics.httpRequests.inc({ route, status: String(status), method });
    metrics.httpDuration.observe({ route, method }, seconds);
    if (route === "/api/v1/enroll" && method === "POST") {
      metrics.enrollments.inc({ result: status < 300 ? "enrolled" : c.error instanceof ApiError ? c.error.code : String(status) });
    }
    const line = {
      requestId: c.get("requestId"),
      method,
      route,
      path: c.req.path,
      status,
      ip: c.get("sourceIp") || undefined,
      ms: Math.round(seconds * 1000),
    };
    if (isAdminRoute(route, method)) logger.info(line, "request");
    else logger.debug(line, "request");
    const m = c.get("machine");
    const boot = c.get("bootScript");
    if (boot && m) {
      const line = { requestId: c.get("requestId"), machineId: m.id, mac: m.mac, state: m.state, answer: boot.answer, ip: c.get("sourceIp") || undefined };
      logger.info(line, boot.answer === "install" ? "installer served" : "boot script served");
    }
    if (route === "/artifacts/*" && status === 404) {
      logger.warn({ requestId: c.get("requestId"), path: c.req.path, ip: c.get("sourceIp") || undefined }, "artifact not found");
    }
    try {
      followAudit();
    } catch (err) {
      // A database that cannot be read (closed, locked) must not turn an answer already made into a 500.
      logger.warn({ err: (err as Error).message }, "cannot read the audit log to log its new events");
    }
  });
}
