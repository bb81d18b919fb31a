/** `app.onError`: one error shape for every HTTP answer, `{ error, message, requestId }`. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../context.js";
import { ApiError, type ErrorCode } from "../errors.js";

/** A body read that failed because the client aborted mid-body (reset, closed, or its signal aborted). */
function clientWentAway(err: Error, c: Context<AppEnv>): boolean {
  if (c.req.raw.signal?.aborted) return true;
  const code = (err as NodeJS.ErrnoException).code ?? (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ABORT_ERR") return true;
  return err.name === "AbortError" || /^(aborted|terminated|premature close)$/i.test(err.message);
}

/** Known errors keep their code; anything else is logged and answered 500 without detail. */
export function handleError(err: Error, c: Context<AppEnv>) {
  const requestId = c.get("requestId") ?? "-";
  if (err instanceof ApiError) {
    return c.json({ error: err.code, message: err.message, requestId, ...(err.details ? { details: err.details } : {}) }, err.status);
  }
  if (err instanceof HTTPException) {
    // hono's own body-limit and similar middlewares throw these with a status of their own.
    const code: ErrorCode = err.status === 413 ? "body_too_large" : err.status === 401 ? "unauthorized" : "bad_request";
    return c.json({ error: code, message: err.message || code, requestId }, err.status as ContentfulStatusCode);
  }
  if (clientWentAway(err, c)) {
    // Not our error and nobody is listening: a line at debug, no stack, no 500 in the metrics.
    c.var.deps?.logger.debug({ requestId, path: c.req.path, reason: err.message }, "client closed the connection before its request body was complete");
    return c.json({ error: "bad_request" satisfies ErrorCode, message: "the request body was cut short by the client", requestId }, 400);
  }
  c.var.deps?.logger.error({ err, requestId }, "unhandled error");
  return c.json({ error: "internal" satisfies ErrorCode, message: "internal error; see the server log", requestId }, 500);
}
