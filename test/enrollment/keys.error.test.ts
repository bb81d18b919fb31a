import { describe, expect, it } from "vitest";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { openDb } from "../../db/client.js";
import { signingKeys } from "../../db/schema.js";
import { issueBootstrapToken, verifyBootstrapToken } from "../../server/enrollment/tokens.js";
import { testPublicUrl } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { keyClock, loadKeys, mac } from "./fixtures.js";

const { start: now, day } = keyClock;

describe("signing keys that went wrong on disk", () => {
  it("active key's private file deleted → retired (still verifies), new key made, reported", async () => {
    const dir = testTempDir("keys");
    const db = openDb(":memory:");
    const first = loadKeys(db, dir).keyring;
    const { token } = await issueBootstrapToken(first, { issuer: testPublicUrl, mac, clusterId: 1, now, ttlMs: day });
    rmSync(join(dir, "keys", `${first.active.kid}.json`));
    const second = loadKeys(db, dir, now + 1000);
    expect(second.lostPrivateKey?.kid).toBe(first.active.kid);
    expect(second.created).toBe(second.keyring.active.kid);
    expect(second.keyring.active.kid).not.toBe(first.active.kid);
    await expect(verifyBootstrapToken(second.keyring, token, { issuer: testPublicUrl, now: now + 2000 })).resolves.toMatchObject({ mac });
    expect(db.select().from(signingKeys).where(eq(signingKeys.kid, first.active.kid)).get()!.retiredAt).toBe(now + 1000);
  });

  it("key file holding another key (or garbage) → not trusted, replaced", () => {
    const dir = testTempDir("keys");
    const db = openDb(":memory:");
    const first = loadKeys(db, dir).keyring;
    const file = join(dir, "keys", `${first.active.kid}.json`);
    writeFileSync(file, '{"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"BBBB","kid":"x"}');
    const second = loadKeys(db, dir, now + 1);
    expect(second.lostPrivateKey?.kid).toBe(first.active.kid);
    expect(second.keyring.active.kid).not.toBe(first.active.kid);
    expect(existsSync(file)).toBe(false);
  });
});
