/**
 * The README's restore, done as written: `edgejoin backup FILE` from a serving edgejoin, then a
 * fresh data folder holding only that file as edgejoin.db plus the old keys/ and tls/; the
 * restarted server knows the clusters, machines and tokens of the backup's moment, keeps its CA,
 * and knows nothing written after the backup.
 */
import { cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loopbackSettings, spawnServer, stopServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { edgejoin } from "./helpers.js";

const adminToken = "restore-test-admin-token-0123456789abcd";

describe("restore from `edgejoin backup`", () => {
  it("backup while serving → new data folder with the copy, keys/ and tls/ → the same clusters, machines, named tokens and CA; later writes absent", {
    timeout: 90_000,
  }, async () => {
    const root = testTempDir("restore");
    const settings: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_LOG_LEVEL: "warn" };
    const headers = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
    const first = spawnServer(settings);
    await waitHealthy(first);
    const env = { EDGEJOIN_URL: first.url, EDGEJOIN_ADMIN_TOKEN: adminToken };
    const ca = await (await fetch(`${first.url}/.well-known/edgejoin-ca.pem`)).text();

    expect((await fetch(`${first.url}/api/v1/clusters`, { method: "POST", headers, body: JSON.stringify({ name: "site-a", servers: 3 }) })).status).toBe(201);
    expect((await fetch(`${first.url}/boot.ipxe?mac=52:54:00:ba:c0:01`)).status).toBe(200);
    const named = await edgejoin(["tokens", "create", "ops", "--json"], env);
    expect(named.code, named.stderr).toBe(0);
    const opsToken = (JSON.parse(named.stdout) as { token: string }).token;

    const file = join(root, "site.db");
    const backup = await edgejoin(["backup", file], env);
    expect(backup.code, backup.stderr).toBe(0);
    // Written after the backup: the restored server must not know it.
    expect((await fetch(`${first.url}/api/v1/clusters`, { method: "POST", headers, body: JSON.stringify({ name: "after-backup" }) })).status).toBe(201);
    expect(await stopServer(first)).toBe(0);

    // README "Backup and restore": the copy as edgejoin.db, keys/ and tls/ from the same time.
    const restored = join(root, "restored-data");
    mkdirSync(restored, { recursive: true, mode: 0o700 });
    cpSync(file, join(restored, "edgejoin.db"));
    cpSync(join(settings.EDGEJOIN_DATA_DIR!, "keys"), join(restored, "keys"), { recursive: true });
    cpSync(join(settings.EDGEJOIN_DATA_DIR!, "tls"), join(restored, "tls"), { recursive: true });
    const second = spawnServer({
      ...(await loopbackSettings(root)),
      EDGEJOIN_DATA_DIR: restored,
      EDGEJOIN_ADMIN_TOKEN: adminToken,
      EDGEJOIN_LOG_LEVEL: "warn",
    });
    await waitHealthy(second);

    const clusters = (await (await fetch(`${second.url}/api/v1/clusters`, { headers })).json()) as { clusters: { name: string; servers: number }[] };
    expect(clusters.clusters.map((c) => [c.name, c.servers])).toEqual([
      ["default", 1],
      ["site-a", 3],
    ]);
    const nodes = (await (await fetch(`${second.url}/api/v1/nodes`, { headers })).json()) as { nodes: { mac: string }[] };
    expect(nodes.nodes.map((n) => n.mac)).toEqual(["52:54:00:ba:c0:01"]);
    // The named token made before the backup still signs in; the CA machines pinned is the same.
    expect((await fetch(`${second.url}/api/v1/clusters`, { headers: { authorization: `Bearer ${opsToken}` } })).status).toBe(200);
    expect(await (await fetch(`${second.url}/.well-known/edgejoin-ca.pem`)).text()).toBe(ca);
  });
});
