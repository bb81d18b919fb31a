/** Shared moves for enrollment tests: a discovered machine, a token for it, an enroll call. */
import type { Db } from "../../db/client.js";
import { issueBootstrapToken } from "../../server/enrollment/tokens.js";
import { loadKeyring } from "../../server/store/keys.js";
import { type makeTestApp, testAdminToken, testPublicUrl } from "../helpers/app.js";

export type TestApp = ReturnType<typeof makeTestApp>;

export const mac = "52:54:00:12:34:56";
export const uuid = "8c3a5e2b-1d4f-4b6a-9c2e-7f1a0b3c4d5e";
export const serial = "SN-0001";
export const bootQuery = `mac=52%3A54%3A00%3A12%3A34%3A56&uuid=8C3A5E2B-1D4F-4B6A-9C2E-7F1A0B3C4D5E&serial=SN-0001&arch=x86_64&platform=efi&manufacturer=Intel%20Corporation&product=NUC13ANHi5`;

export const facts = {
  cpu_count: 8,
  memory_bytes: 16 * 1024 ** 3,
  disks: [{ name: "nvme0n1", size_bytes: 512_110_190_592, model: "Samsung SSD 980" }],
  product: "NUC13ANHi5",
};

/** A bootstrap token for `forMac` in cluster `clusterId` (the default cluster is 1), as user-data would carry. */
export async function tokenFor(t: TestApp, forMac = mac, clusterId = 1, ttlMs = t.config.tokenTtlMs) {
  return issueBootstrapToken(t.keyring, { issuer: testPublicUrl, mac: forMac, clusterId, now: t.clock(), ttlMs });
}

/** POST a JSON body to `path`. */
export function postJson(t: TestApp, path: string, body: unknown, headers: Record<string, string> = {}) {
  return t.app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** POST /api/v1/enroll with the usual identity plus `overrides`. */
export function enroll(t: TestApp, token: string, overrides: Record<string, unknown> = {}) {
  return postJson(t, "/api/v1/enroll", { token, mac, uuid, serial, hostname: "ubuntu", ip: "10.77.0.50", arch: "x86_64", facts, ...overrides });
}

/** Boot the machine (discovered), then enroll it; returns the parsed 201 body. */
export async function discoverAndEnroll(t: TestApp, overrides: Record<string, unknown> = {}) {
  await t.app.request(`/boot.ipxe?${bootQuery}`);
  const { token } = await tokenFor(t);
  const res = await enroll(t, token, overrides);
  if (res.status !== 201) throw new Error(`enroll answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { node_id: number; state: string; credential: string };
}

export const admin = { authorization: `Bearer ${testAdminToken}` };

/** GET with a bearer token. */
export function getWith(t: TestApp, path: string, bearer: string) {
  return t.app.request(path, { headers: { authorization: `Bearer ${bearer}` } });
}

/** Signing-key tests: when their clock starts, a day, and how long a retired key must keep verifying. */
export const keyClock = { start: Date.UTC(2026, 10, 25, 12, 0, 0), day: 86_400_000, maxTokenLifetimeMs: 365 * 86_400_000 };

/** Load (or make) the keys in `dataDir` at `at`, as a start does. */
export function loadKeys(db: Db, dataDir: string, at = keyClock.start) {
  return loadKeyring(db, { dataDir, now: at, maxTokenLifetimeMs: keyClock.maxTokenLifetimeMs });
}
