/** `app.onError`: one error shape for every HTTP answer, `{ error, message, requestId }`. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../context.js";
import { ApiError, type ErrorCode } from "../errors.js";

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
  c.var.deps?.logger.error({ err, requestId }, "unhandled error");
  return c.json({ error: "internal" satisfies ErrorCode, message: "internal error; see the server log", requestId }, 500);
}
