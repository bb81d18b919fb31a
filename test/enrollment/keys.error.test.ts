import { afterEach, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { openDb, type Db } from "../../db/client.js";
import { signingKeys } from "../../db/schema.js";
import { issueBootstrapToken, verifyBootstrapToken } from "../../server/enrollment/tokens.js";
import { loadKeyring } from "../../server/store/keys.js";
import { testPublicUrl } from "../helpers/app.js";
import { mac } from "./fixtures.js";

const now = Date.UTC(2026, 10, 25, 12, 0, 0);
const day = 86_400_000;
const lifetime = 365 * day;
const dirs: string[] = [];

function dataDir() {
  const d = mkdtempSync(join(tmpdir(), "edgejoin-keys-"));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function load(db: Db, dir: string, at = now) {
  return loadKeyring(db, { dataDir: dir, now: at, maxTokenLifetimeMs: lifetime });
}

describe("signing keys that went wrong on disk", () => {
  it("active key's private file deleted → retired (still verifies), new key made, reported", async () => {
    const dir = dataDir();
    const db = openDb(":memory:");
    const first = load(db, dir).keyring;
    const { token } = await issueBootstrapToken(first, { issuer: testPublicUrl, mac, clusterId: 1, now, ttlMs: day });
    rmSync(join(dir, "keys", `${first.active.kid}.json`));
    const second = load(db, dir, now + 1000);
    expect(second.lostPrivateKey?.kid).toBe(first.active.kid);
    expect(second.created).toBe(second.keyring.active.kid);
    expect(second.keyring.active.kid).not.toBe(first.active.kid);
    await expect(verifyBootstrapToken(second.keyring, token, { issuer: testPublicUrl, now: now + 2000 })).resolves.toMatchObject({ mac });
    expect(db.select().from(signingKeys).where(eq(signingKeys.kid, first.active.kid)).get()!.retiredAt).toBe(now + 1000);
  });

  it("key file holding another key (or garbage) → not trusted, replaced", () => {
    const dir = dataDir();
    const db = openDb(":memory:");
    const first = load(db, dir).keyring;
    const file = join(dir, "keys", `${first.active.kid}.json`);
    writeFileSync(file, '{"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"BBBB","kid":"x"}');
    const second = load(db, dir, now + 1);
    expect(second.lostPrivateKey?.kid).toBe(first.active.kid);
    expect(second.keyring.active.kid).not.toBe(first.active.kid);
    expect(existsSync(file)).toBe(false);
  });
});
