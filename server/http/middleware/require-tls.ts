/**
 * The node API answers only requests that reached edgejoin over TLS. Whether they did is read
 * from the socket @hono/node-server hands the app (a `TLSSocket` says `encrypted`), never from a
 * header a client or proxy could set. Anything else (plain HTTP, no socket at all) is refused.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { ApiError } from "../../errors.js";

/** True when the request's own socket is a TLS one. */
export function cameOverTls(env: unknown): boolean {
  const socket = (env as { incoming?: { socket?: { encrypted?: unknown } } } | undefined)?.incoming?.socket;
  return socket?.encrypted === true;
}

/** `403 tls_required` for a request that did not come over the HTTPS listener; its body is never read. */
export const requireTls = createMiddleware<AppEnv>(async (c, next) => {
  if (!cameOverTls(c.env)) {
    const { nodeUrl, publicUrl } = c.var.deps.config;
    throw new ApiError(
      "tls_required",
      `the node API answers only over HTTPS: use ${nodeUrl} and trust edgejoin's CA (${publicUrl}/.well-known/edgejoin-ca.pem)`,
    );
  }
  await next();
});
