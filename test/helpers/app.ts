/** Builds an app on an in-memory database with a steppable clock, for route tests. */
import pino from "pino";
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
 * (`deps.keyring`, or pass one to share keys between apps).
 */
export function makeTestApp(opts: { env?: Record<string, string>; db?: Db; keyring?: Keyring } = {}) {
  const db = opts.db ?? openDb(":memory:");
  const config = testConfig(opts.env);
  const clock = steppableClock();
  ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: clock() });
  const deps: Deps = makeDeps({ db, config, clock, logger: pino({ level: "silent" }), ...(opts.keyring ? { keyring: opts.keyring } : {}) });
  const app = createApp(deps);
  return { app, db, config, clock, deps, keyring: deps.keyring };
}
