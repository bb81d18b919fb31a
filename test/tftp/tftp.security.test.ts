/** The boot folder is read-only and nothing outside it can be reached. */
import { mkdirSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TftpServer } from "../../server/tftp/server.js";
import { tempDir } from "../helpers/temp-dir.js";
import { requireTools, run } from "../helpers/tools.js";
import { opcode, RawClient, rrq, startTestServer, type LogLine } from "./harness.js";

// curl's exit codes for the TFTP error packet it received.
const CURL_NOT_FOUND = 68;
const CURL_ACCESS_VIOLATION = 69;

describe("TFTP containment", () => {
  const tmp = tempDir("tftp-sec");
  const bootDir = join(tmp.dir, "boot");
  const outside = join(tmp.dir, "outside");
  let server: TftpServer;
  let port: number;
  let logs: LogLine[];

  beforeAll(async () => {
    mkdirSync(join(bootDir, "sub"), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, "secret.txt"), "outside the boot folder\n");
    writeFileSync(join(bootDir, "inside.txt"), "inside\n");
    writeFileSync(join(bootDir, "sub", "nested.txt"), "nested\n");
    symlinkSync(join(outside, "secret.txt"), join(bootDir, "escape.txt"));
    symlinkSync(outside, join(bootDir, "escape-dir"));
    symlinkSync("inside.txt", join(bootDir, "alias.txt"));
    // An operator's link to the system iPXE leaves the boot folder: refused, not followed.
    symlinkSync("/usr/lib/ipxe/undionly.kpxe", join(bootDir, "undionly.kpxe"));
    ({ server, port, logs } = await startTestServer(bootDir));
  });
  afterAll(async () => {
    await server?.close();
    tmp.remove();
  });

  const curl = (path: string, ...extra: string[]) => run("curl", ["-sS", "--max-time", "10", ...extra, `tftp://127.0.0.1:${port}/${path}`]);

  it("../ traversal (curl --path-as-is) → access violation, no bytes", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("../outside/secret.txt", "--path-as-is");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
  });

  it("sub/../../ traversal → access violation", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("sub/../../outside/secret.txt", "--path-as-is");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
  });

  it("a/../b that stays inside → still refused (no `..` at all)", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("sub/../inside.txt", "--path-as-is");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(logs.some((l) => l.msg === "TFTP request refused" && l.reason === "traversal")).toBe(true);
  });

  it("absolute path → access violation, no bytes", async () => {
    requireTools({ curl: "curl" });
    const r = await curl(`${outside}/secret.txt`); // URL path //tmp/...: curl sends /tmp/...
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
    expect(logs.some((l) => l.msg === "TFTP request refused" && l.reason === "absolute")).toBe(true);
  });

  it("symlink in the boot folder pointing outside → access violation, no bytes", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("escape.txt");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
    expect(logs.some((l) => l.msg === "TFTP request refused" && l.file === "escape.txt" && l.reason === "escapes-root")).toBe(true);
  });

  it("a file under a symlinked directory leading outside → access violation", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("escape-dir/secret.txt");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
  });

  it("operator's link boot/undionly.kpxe → /usr/lib/ipxe → refused, not replaced by the fallback", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("undionly.kpxe");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
  });

  it("symlink staying inside the boot folder → served", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("alias.txt");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe("inside\n");
  });

  it("a file in a subfolder → served", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("sub/nested.txt");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe("nested\n");
  });

  it("a directory → refused, no bytes", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("sub");
    expect(r.code).toBe(CURL_ACCESS_VIOLATION);
    expect(r.stdout.length).toBe(0);
  });

  it("unknown file → file not found (curl exit 68)", async () => {
    requireTools({ curl: "curl" });
    const r = await curl("no-such-file.efi");
    expect(r.code).toBe(CURL_NOT_FOUND);
    expect(r.stdout.length).toBe(0);
    expect(logs.some((l) => l.msg === "TFTP file not found" && l.file === "no-such-file.efi")).toBe(true);
  });

  it("upload (curl -T) → refused, nothing written", async () => {
    requireTools({ curl: "curl" });
    const src = join(tmp.dir, "upload.bin");
    writeFileSync(src, "should never land\n");
    const r = await run("curl", ["-sS", "--max-time", "10", "-T", src, `tftp://127.0.0.1:${port}/uploaded.bin`]);
    expect(r.code).not.toBe(0);
    expect(existsSync(join(bootDir, "uploaded.bin"))).toBe(false);
    expect(logs.some((l) => l.msg === "TFTP write refused: the server is read-only" && l.file === "uploaded.bin")).toBe(true);
  });

  it("upload over an existing file → refused, file unchanged", async () => {
    requireTools({ curl: "curl" });
    const src = join(tmp.dir, "upload2.bin");
    writeFileSync(src, "overwrite attempt\n");
    const r = await run("curl", ["-sS", "--max-time", "10", "-T", src, `tftp://127.0.0.1:${port}/inside.txt`]);
    expect(r.code).not.toBe(0);
    const again = await curl("inside.txt");
    expect(again.stdout.toString()).toBe("inside\n");
  });

  it("RRQ for a traversal name → one ERROR packet with code 2", async () => {
    const client = await RawClient.open();
    try {
      await client.send(port, rrq("../../etc/passwd"));
      const reply = await client.next();
      expect(reply).toBeDefined();
      expect(opcode(reply!.message)).toBe(5);
      expect(reply!.message.readUInt16BE(2)).toBe(2);
      expect(await client.next(300)).toBeUndefined();
    } finally {
      client.close();
    }
  });
});
