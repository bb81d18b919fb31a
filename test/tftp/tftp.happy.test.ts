/** Real TFTP clients (curl, Debian's atftp) fetch files byte for byte. */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TftpServer } from "../../server/tftp/server.js";
import { tempDir } from "../helpers/temp-dir.js";
import { requireTools, run } from "../helpers/tools.js";
import { autoexec, startTestServer, type LogLine } from "./harness.js";

describe("TFTP with real clients", () => {
  const tmp = tempDir("tftp-happy");
  const bootDir = join(tmp.dir, "boot");
  const outDir = join(tmp.dir, "out");
  // 300 KB: 586 blocks at 512, 205 at 1468, so windows and the last short block are exercised.
  const big = randomBytes(300_000);
  let server: TftpServer;
  let port: number;
  let logs: LogLine[];

  beforeAll(async () => {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(bootDir);
    mkdirSync(outDir);
    writeFileSync(join(bootDir, "big.bin"), big);
    writeFileSync(join(bootDir, "empty.bin"), "");
    ({ server, port, logs } = await startTestServer(bootDir));
  });
  afterAll(async () => {
    await server?.close();
    tmp.remove();
  });

  it("curl default options on a 300 KB file → identical bytes, transfer logged", async () => {
    requireTools({ curl: "curl" });
    const r = await run("curl", ["-sS", "--max-time", "15", `tftp://127.0.0.1:${port}/big.bin`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(big)).toBe(true);
    const done = logs.find((l) => l.msg === "TFTP transfer done" && l.file === "big.bin");
    expect(done).toMatchObject({ level: 30, bytes: big.length, client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(typeof done?.ms).toBe("number");
  });

  it("curl --tftp-blksize 1468 → identical bytes at blksize 1468", async () => {
    requireTools({ curl: "curl" });
    const r = await run("curl", ["-sS", "--max-time", "15", "--tftp-blksize", "1468", `tftp://127.0.0.1:${port}/big.bin`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(big)).toBe(true);
    expect(logs.some((l) => l.msg === "TFTP transfer done" && l.blksize === 1468)).toBe(true);
  });

  it("atftp with blksize 1468 and windowsize 4 (OVMF's options) → identical bytes", async () => {
    requireTools({ atftp: "atftp" });
    const out = join(outDir, "atftp-big.bin");
    const r = await run("atftp", ["-g", "-r", "big.bin", "-l", out, "--option", "blksize 1468", "--option", "windowsize 4", "127.0.0.1", String(port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).equals(big)).toBe(true);
    expect(logs.some((l) => l.msg === "TFTP transfer done" && l.file === "big.bin" && l.blksize === 1468 && l.windowsize === 4)).toBe(true);
  });

  it("snponly.efi absent from the boot folder → the ipxe package's file, byte for byte", async () => {
    requireTools({ curl: "curl" });
    let real: Buffer;
    try {
      real = readFileSync("/usr/lib/ipxe/snponly.efi");
    } catch {
      throw new Error("/usr/lib/ipxe/snponly.efi is missing: apt-get install ipxe");
    }
    const r = await run("curl", ["-sS", "--max-time", "15", "--tftp-blksize", "1468", `tftp://127.0.0.1:${port}/snponly.efi`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(real)).toBe(true);
  });

  it("ipxe.efi through Debian's symlink /usr/lib/ipxe/ipxe.efi → /boot/ipxe.efi → served", async () => {
    requireTools({ atftp: "atftp" });
    let real: Buffer;
    try {
      real = readFileSync("/usr/lib/ipxe/ipxe.efi");
    } catch {
      throw new Error("/usr/lib/ipxe/ipxe.efi is missing: apt-get install ipxe");
    }
    const out = join(outDir, "ipxe.efi");
    const r = await run("atftp", ["-g", "-r", "ipxe.efi", "-l", out, "--option", "blksize 1468", "--option", "windowsize 4", "127.0.0.1", String(port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).equals(real)).toBe(true);
  });

  it("autoexec.ipxe → the generated chain script", async () => {
    requireTools({ curl: "curl" });
    const r = await run("curl", ["-sS", "--max-time", "10", `tftp://127.0.0.1:${port}/autoexec.ipxe`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(autoexec)).toBe(true);
  });

  // atftp, not curl: curl 7.88 rejects `tsize 0` in an OACK as illegal (exit 71) from any server.
  it("an empty file → zero bytes, exit 0", async () => {
    requireTools({ atftp: "atftp" });
    const out = join(outDir, "empty.bin");
    writeFileSync(out, "stale");
    const r = await run("atftp", ["-g", "-r", "empty.bin", "-l", out, "--option", "tsize 0", "127.0.0.1", String(port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).length).toBe(0);
  });

  it("three clients at once → each gets identical bytes", async () => {
    requireTools({ curl: "curl" });
    const rs = await Promise.all(
      [512, 1468, 1432].map((blksize) => run("curl", ["-sS", "--max-time", "20", "--tftp-blksize", String(blksize), `tftp://127.0.0.1:${port}/big.bin`])),
    );
    for (const r of rs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.equals(big)).toBe(true);
    }
  });
});

describe("TFTP without a boot folder", () => {
  it("EDGEJOIN_BOOT_DIR missing → warns at start, still serves snponly.efi from the ipxe dir and autoexec.ipxe", async () => {
    requireTools({ curl: "curl" });
    const tmp = tempDir("tftp-noboot");
    const { server, port, logs } = await startTestServer(join(tmp.dir, "absent"));
    try {
      expect(logs.some((l) => l.level === 40 && /EDGEJOIN_BOOT_DIR is not a directory/.test(l.msg))).toBe(true);
      const snp = await run("curl", ["-sS", "--max-time", "15", `tftp://127.0.0.1:${port}/snponly.efi`]);
      expect(snp.code, snp.stderr).toBe(0);
      expect(snp.stdout.equals(readFileSync("/usr/lib/ipxe/snponly.efi"))).toBe(true);
      const script = await run("curl", ["-sS", "--max-time", "10", `tftp://127.0.0.1:${port}/autoexec.ipxe`]);
      expect(script.stdout.equals(autoexec)).toBe(true);
      const missing = await run("curl", ["-sS", "--max-time", "10", `tftp://127.0.0.1:${port}/anything.bin`]);
      expect(missing.code).toBe(68);
    } finally {
      await server.close();
      tmp.remove();
    }
  });
});
