/** Builds an app on an in-memory database with a steppable clock, for route tests. */
import pino from "pino";
import { fileURLToPath } from "node:url";
import { openDb, type Db } from "../../db/client.js";
import { createApp, makeDeps } from "../../server/app.js";
import { loadConfig, type Config } from "../../server/config.js";
import type { Deps } from "../../server/context.js";
import { ensureDefaultCluster } from "../../server/store/clusters.js";

export const testPublicUrl = "http://10.77.0.1:8080";

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
    ...env,
  });
}

/** A fresh app with its own in-memory DB and the default cluster. */
export function makeTestApp(opts: { env?: Record<string, string>; db?: Db } = {}) {
  const db = opts.db ?? openDb(":memory:");
  const config = testConfig(opts.env);
  const clock = steppableClock();
  ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: clock() });
  const deps: Deps = makeDeps({ db, config, clock, logger: pino({ level: "silent" }) });
  const app = createApp(deps);
  return { app, db, config, clock, deps };
}
