/**
 * The closed set of error codes clients may rely on, and the two ways code says "no": handlers
 * throw `ApiError`; store transactions return a `Refusal` (so writes made before it, such as an
 * audit record or a split-brain flag, still commit) and `transact` throws it after the commit.
 * Framework-free: the HTTP error handler lives in `server/http/error-handler.ts`.
 */

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
  tls_required: 403,
  not_found: 404,
  method_not_allowed: 405,
  range_not_satisfiable: 416,
  conflict: 409,
  token_replayed: 409,
  identity_conflict: 409,
  already_enrolled: 409,
  unresolved_conflict: 409,
  rate_limited: 429,
  mac_mismatch: 403,
  cluster_mismatch: 403,
  invalid_state: 409,
  internal: 500,
} as const satisfies Record<string, number>;

/** The closed set of error codes clients may rely on. */
export type ErrorCode = keyof typeof statusByCode;

/** The HTTP status an error code is answered with. */
export type ErrorStatus = (typeof statusByCode)[ErrorCode];

/** An error a handler throws on purpose; becomes its status and JSON body. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
  get status(): ErrorStatus {
    return statusByCode[this.code];
  }
}

/** A "no" decided inside a store transaction: returned, never thrown, so the transaction still commits. */
export class Refusal {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
    /** Answered to the client beside the message, e.g. what a split-brain flag recorded. */
    readonly details?: Record<string, unknown>,
  ) {}

  toError(): ApiError {
    return new ApiError(this.code, this.message, this.details);
  }
}

/** Shorthand for `new Refusal(code, message, details)`. */
export function refuse(code: ErrorCode, message: string, details?: Record<string, unknown>): Refusal {
  return new Refusal(code, message, details);
}
