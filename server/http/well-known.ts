/** `GET /.well-known/jwks.json`: the public keys bootstrap tokens and node credentials verify with. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";

export const wellKnownRoutes = new Hono<AppEnv>().get("/.well-known/jwks.json", (c) => {
  // Short cache: a rotation should be visible within minutes, and old keys stay listed anyway.
  c.header("cache-control", "public, max-age=300");
  return c.json(c.var.deps.keyring.jwks());
});
