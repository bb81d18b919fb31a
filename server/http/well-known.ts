/**
 * `GET /.well-known/jwks.json`: the public keys bootstrap tokens and node credentials verify with.
 * `GET /.well-known/edgejoin-ca.pem`: the CA certificate the node API's HTTPS certificate chains to.
 */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";

export const wellKnownRoutes = new Hono<AppEnv>()
  .get("/.well-known/jwks.json", (c) => {
    // Short cache: a rotation should be visible within minutes, and old keys stay listed anyway.
    c.header("cache-control", "public, max-age=300");
    return c.json(c.var.deps.keyring.jwks());
  })
  .get("/.well-known/edgejoin-ca.pem", (c) => {
    // Public by design: it lets a client check the server, it grants nothing. Fetched over plain
    // HTTP it proves nothing either: compare its fingerprint with the one edgejoin logs at start.
    c.header("cache-control", "public, max-age=300");
    return c.body(c.var.deps.caCertPem, 200, { "content-type": "application/x-pem-file" });
  });
