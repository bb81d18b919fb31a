/** One error shape for every HTTP answer: `{ error, message, requestId }` with a stable code. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "./context.js";

const statusByCode = {
  bad_request: 400,
  invalid_json: 400,
  body_too_large: 413,
  validation_failed: 422,
  invalid_mac: 422,
  unauthorized: 401,
  token_invalid: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  token_wrong_audience: 401,
  token_unknown_key: 401,
  credential_revoked: 401,
  forbidden: 403,
  machine_rejected: 403,
  machine_retired: 403,
  seat_revoked: 403,
  not_found: 404,
  method_not_allowed: 405,
  range_not_satisfiable: 416,
  conflict: 409,
  token_replayed: 409,
  identity_conflict: 409,
  mac_mismatch: 403,
  cluster_mismatch: 403,
  invalid_state: 409,
  internal: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

/** The closed set of error codes clients may rely on. */
export type ErrorCode = keyof typeof statusByCode;

/** An error a handler throws on purpose; becomes its status and JSON body. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
  get status(): ContentfulStatusCode {
    return statusByCode[this.code];
  }
}

/** `app.onError`: known errors keep their code; anything else is logged and answered 500 without detail. */
export function handleError(err: Error, c: Context<AppEnv>) {
  const requestId = c.get("requestId") ?? "-";
  if (err instanceof ApiError) {
    return c.json(
      { error: err.code, message: err.message, requestId, ...(err.details ? { details: err.details } : {}) },
      err.status,
    );
  }
  if (err instanceof HTTPException) {
    // hono's own body-limit and similar middlewares throw these with a status of their own.
    const code: ErrorCode = err.status === 413 ? "body_too_large" : err.status === 401 ? "unauthorized" : "bad_request";
    return c.json({ error: code, message: err.message || code, requestId }, err.status as ContentfulStatusCode);
  }
  c.var.deps?.logger.error({ err, requestId }, "unhandled error");
  return c.json({ error: "internal" satisfies ErrorCode, message: "internal error; see the server log", requestId }, 500);
}
