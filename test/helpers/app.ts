/** Builds an app on an in-memory database with a steppable clock, for route tests. */
import pino from "pino";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openDb, type Db } from "../../db/client.js";
import { createApp, makeDeps } from "../../server/app.js";
import { loadConfig, type Config } from "../../server/config.js";
import type { Deps } from "../../server/context.js";
import { ensureDefaultCluster } from "../../server/store/clusters.js";
import type { Keyring } from "../../server/enrollment/keyring.js";

export const testPublicUrl = "http://10.77.0.1:8080";
/** The admin bearer token every test app accepts (EDGEJOIN_ADMIN_TOKEN unless a test overrides it). */
export const testAdminToken = "test-admin-token-0123456789abcdef";

/**
 * A fixed CA certificate (test/fixtures/tls/ca.crt, made once with server/tls/ca.ts) for route
 * tests: user-data carries it, so golden files need the same one every run. Its key is not kept.
 */
export const testCaCertPem = readFileSync(new URL("../fixtures/tls/ca.crt", import.meta.url), "utf8");

/**
 * The bindings @hono/node-server passes for a request that came in over its HTTPS listener.
 * `app.request()` has no socket, so the node API (enroll, node config, events) would answer
 * `403 tls_required`; route tests pass this to run "over TLS".
 */
export const overTls = { incoming: { socket: { encrypted: true } } };

/** A clock tests move by hand. */
export function steppableClock(start = Date.UTC(2026, 10, 25, 12, 0, 0)) {
  let now = start;
  const clock = () => now;
  clock.advance = (ms: number) => {
    now += ms;
  };
  clock.set = (ms: number) => {
    now = ms;
  };
  return clock;
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    EDGEJOIN_PUBLIC_URL: testPublicUrl,
    EDGEJOIN_TEMPLATES_DIR: fileURLToPath(new URL("../../templates", import.meta.url)),
    EDGEJOIN_ADMIN_TOKEN: testAdminToken,
    ...env,
  });
}

/**
 * A fresh app with its own in-memory DB, the default cluster and a freshly generated keyring
 * (`deps.keyring`, or pass one to share keys between apps). `transport` is the one switch for how
 * `app.request()` arrives: `https` (the default) as if over the HTTPS listener, `http` as plain
 * HTTP with no TLS socket. Requests served through a real listener (`app.fetch`) carry their own.
 */
export function makeTestApp(opts: { env?: Record<string, string>; db?: Db; keyring?: Keyring; transport?: "https" | "http"; caCertPem?: string } = {}) {
  const db = opts.db ?? openDb(":memory:");
  const config = testConfig(opts.env);
  const clock = steppableClock();
  ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: clock() });
  const deps: Deps = makeDeps({
    db,
    config,
    clock,
    logger: pino({ level: "silent" }),
    caCertPem: opts.caCertPem ?? testCaCertPem,
    ...(opts.keyring ? { keyring: opts.keyring } : {}),
  });
  const app = createApp(deps);
  if ((opts.transport ?? "https") === "https") asOverTls(app);
  return { app, db, config, clock, deps, keyring: deps.keyring };
}

/** Make `app.request()` arrive as over the HTTPS listener unless a test passes its own bindings. */
export function asOverTls<A extends { request: (input: RequestInfo | URL, init?: RequestInit, env?: object, ctx?: never) => Response | Promise<Response> }>(
  app: A,
): A {
  const request = app.request.bind(app);
  app.request = (input, init, env, ctx) => request(input, init, env ?? overTls, ctx);
  return app;
}
