import { describe, expect, it } from "vitest";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { decodeProtectedHeader } from "jose";
import { openDb } from "../../db/client.js";
import { auditEvents, signingKeys } from "../../db/schema.js";
import { ed25519Thumbprint } from "../../server/enrollment/keyring.js";
import { issueBootstrapToken, verifyBootstrapToken } from "../../server/enrollment/tokens.js";
import { makeTestApp, testPublicUrl } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { admin, bootQuery, enroll, keyClock, loadKeys, mac, tokenFor } from "./fixtures.js";

const { start: now, day, maxTokenLifetimeMs: lifetime } = keyClock;

describe("signing keys in the data folder", () => {
  it("first start → one Ed25519 key, private JWK mode 0600 in keys/ (0700), public JWK and kid in signing_keys", () => {
    const dir = testTempDir("keys");
    const db = openDb(":memory:");
    const { keyring, created } = loadKeys(db, dir);
    expect(created).toBe(keyring.active.kid);
    expect(keyring.active.kid).toBe(ed25519Thumbprint(keyring.active.publicJwk.x));
    const file = join(dir, "keys", `${keyring.active.kid}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "keys")).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir, "keys"))).toEqual([`${keyring.active.kid}.json`]);
    const rows = db.select().from(signingKeys).all();
    expect(rows).toEqual([{ kid: keyring.active.kid, publicJwk: keyring.active.publicJwk, createdAt: now, retiredAt: null }]);
    expect(JSON.stringify(rows)).not.toContain('"d"');
  });

  it("restart → same key, and tokens issued before the restart still verify", async () => {
    const dir = testTempDir("keys");
    const db = openDb(":memory:");
    const before = loadKeys(db, dir).keyring;
    const { token } = await issueBootstrapToken(before, { issuer: testPublicUrl, mac, clusterId: 1, now, ttlMs: day });
    const after = loadKeys(db, dir, now + 1000);
    expect(after.created).toBeUndefined();
    expect(after.keyring.active.kid).toBe(before.active.kid);
    await expect(verifyBootstrapToken(after.keyring, token, { issuer: testPublicUrl, now: now + 2000 })).resolves.toMatchObject({ mac });
  });

  it("POST /api/v1/keys/rotate → new active kid, old token still enrolls, old public key published, old private file gone", async () => {
    const dir = testTempDir("keys");
    const db = openDb(":memory:");
    const { keyring } = loadKeys(db, dir);
    const t = makeTestApp({ db, keyring, env: { EDGEJOIN_DATA_DIR: dir } });
    await t.app.request(`/boot.ipxe?${bootQuery}`);
    const oldKid = keyring.active.kid;
    const { token: issuedBefore } = await tokenFor(t);
    // A node credential from before the rotation, for another machine.
    const other = "52:54:00:00:00:77";
    const early = await enroll(t, (await tokenFor(t, other)).token, { mac: other, uuid: undefined, serial: undefined });
    const { credential: credentialBefore } = (await early.json()) as { credential: string };

    expect((await t.app.request("/api/v1/keys/rotate", { method: "POST" })).status).toBe(401);
    t.clock.advance(1000);
    const res = await t.app.request("/api/v1/keys/rotate", { method: "POST", headers: admin });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { active_kid: string; retired_kid: string; pruned_kids: string[] };
    expect(body).toEqual({ active_kid: keyring.active.kid, retired_kid: oldKid, pruned_kids: [] });
    expect(body.active_kid).not.toBe(oldKid);

    const jwks = (await (await t.app.request("/.well-known/jwks.json")).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual([body.active_kid, oldKid]);
    expect(readdirSync(join(dir, "keys"))).toEqual([`${body.active_kid}.json`]);
    expect(statSync(join(dir, "keys", `${body.active_kid}.json`)).mode & 0o777).toBe(0o600);

    expect((await enroll(t, issuedBefore)).status).toBe(201);
    const config = await t.app.request("/api/v1/node/config", { headers: { authorization: `Bearer ${credentialBefore}` } });
    expect(config.status).toBe(202);
    const { token: issuedAfter } = await tokenFor(t);
    expect(decodeProtectedHeader(issuedAfter).kid).toBe(body.active_kid);
    expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "signing_key.rotated")).all()).toHaveLength(1);

    // A restart finds the same two keys, the new one active.
    const reloaded = loadKeys(db, dir, t.clock());
    expect(reloaded.keyring.active.kid).toBe(body.active_kid);
    expect(reloaded.keyring.jwks().keys.map((k) => k.kid)).toEqual([body.active_kid, oldKid]);
  });

  it("retired key after every token it signed has expired → dropped at start", async () => {
    const dir = testTempDir("keys");
    const db = openDb(":memory:");
    const { keyring } = loadKeys(db, dir);
    const t = makeTestApp({ db, keyring, env: { EDGEJOIN_DATA_DIR: dir } });
    const oldKid = keyring.active.kid;
    await t.app.request("/api/v1/keys/rotate", { method: "POST", headers: admin });
    const retiredAt = t.clock();
    expect(loadKeys(db, dir, retiredAt + lifetime).keyring.verificationKey(oldKid)).toBeDefined();
    const later = loadKeys(db, dir, retiredAt + lifetime + 1);
    expect(later.pruned).toEqual([oldKid]);
    expect(later.keyring.verificationKey(oldKid)).toBeUndefined();
    expect(
      db
        .select()
        .from(signingKeys)
        .all()
        .map((r) => r.kid),
    ).toEqual([keyring.active.kid]);
  });
});
