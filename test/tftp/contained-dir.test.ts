/** ContainedDir: every name is resolved and checked against the root before anything is opened. */
import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainedDir, refuseByName } from "../../server/files/contained-dir.js";
import { describeBootFiles } from "../../server/tftp/server.js";
import { tempDir } from "../helpers/temp-dir.js";

describe("ContainedDir", () => {
  const tmp = tempDir("contained");
  const root = join(tmp.dir, "root");
  const outside = join(tmp.dir, "outside");
  const linkedRoot = join(tmp.dir, "linked-root");
  let dir: ContainedDir;

  beforeAll(() => {
    mkdirSync(join(root, "sub"), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(root, "a.txt"), "A");
    writeFileSync(join(root, "sub", "b.txt"), "BB");
    writeFileSync(join(outside, "secret"), "S");
    symlinkSync(join(outside, "secret"), join(root, "out-link"));
    symlinkSync("sub/b.txt", join(root, "in-link"));
    symlinkSync("loop2", join(root, "loop1"));
    symlinkSync("loop1", join(root, "loop2"));
    symlinkSync(root, linkedRoot);
    execFileSync("mkfifo", [join(root, "fifo")]);
    dir = new ContainedDir(root);
  });
  afterAll(() => tmp.remove());

  it.each([
    ["../outside/secret", "traversal"],
    ["sub/../../outside/secret", "traversal"],
    ["sub/../a.txt", "traversal"],
    ["..", "traversal"],
    ["/etc/passwd", "absolute"],
    ["a.txt\0.png", "nul"],
  ] as const)("name %j → refused (%s) before touching the disk", async (name, reason) => {
    expect(refuseByName(name)).toBe(reason);
    expect(await dir.open(name)).toEqual({ kind: "refused", reason });
    expect(dir.locateSync(name)).toEqual({ kind: "refused", reason });
  });

  it("a file inside → opened read-only with its real path and size", async () => {
    const r = await dir.open("sub/b.txt");
    expect(r.kind).toBe("file");
    if (r.kind !== "file") return;
    expect(r.size).toBe(2);
    expect(r.path.endsWith("/root/sub/b.txt")).toBe(true);
    expect((await r.handle.readFile()).toString()).toBe("BB");
    await r.handle.close();
  });

  it("a symlink staying inside → the target", async () => {
    const r = await dir.open("in-link");
    expect(r.kind).toBe("file");
    if (r.kind === "file") await r.handle.close();
    expect(dir.locateSync("in-link")).toMatchObject({ kind: "file", size: 2 });
  });

  it("a symlink leading outside → refused (escapes-root)", async () => {
    expect(await dir.open("out-link")).toEqual({ kind: "refused", reason: "escapes-root" });
    expect(dir.locateSync("out-link")).toEqual({ kind: "refused", reason: "escapes-root" });
  });

  it("a symlink loop → refused, no hang", async () => {
    expect(await dir.open("loop1")).toEqual({ kind: "refused", reason: "unreadable" });
  });

  it("a FIFO → refused (not-a-file), open does not block", async () => {
    expect(await dir.open("fifo")).toEqual({ kind: "refused", reason: "not-a-file" });
  });

  it("a directory, or the root itself → refused (not-a-file)", async () => {
    expect(await dir.open("sub")).toEqual({ kind: "refused", reason: "not-a-file" });
    expect(await dir.open("")).toEqual({ kind: "refused", reason: "not-a-file" });
  });

  it("a missing name, or a name under a file → missing", async () => {
    expect(await dir.open("nope")).toEqual({ kind: "missing" });
    expect(await dir.open("a.txt/x")).toEqual({ kind: "missing" });
  });

  it("a root reached through a symlink → contained against its real path", async () => {
    const viaLink = new ContainedDir(linkedRoot);
    const r = await viaLink.open("a.txt");
    expect(r.kind).toBe("file");
    if (r.kind === "file") await r.handle.close();
    expect(await viaLink.open("out-link")).toEqual({ kind: "refused", reason: "escapes-root" });
  });

  it("a missing root → every name missing", async () => {
    expect(await new ContainedDir(join(tmp.dir, "absent")).open("a.txt")).toEqual({ kind: "missing" });
  });
});

describe("describeBootFiles", () => {
  const tmp = tempDir("bootfiles");
  const boot = join(tmp.dir, "boot");
  const ipxe = join(tmp.dir, "ipxe");
  const elsewhere = join(tmp.dir, "elsewhere");

  beforeAll(() => {
    mkdirSync(boot);
    mkdirSync(ipxe);
    mkdirSync(elsewhere);
    // Like Debian: the package's ipxe.efi is a link out of its folder, and must be followed.
    writeFileSync(join(elsewhere, "ipxe.efi"), "efi");
    symlinkSync(join(elsewhere, "ipxe.efi"), join(ipxe, "ipxe.efi"));
    writeFileSync(join(ipxe, "snponly.efi"), "snp");
    writeFileSync(join(boot, "snponly.efi"), "operator's own");
  });
  afterAll(() => tmp.remove());

  it("boot folder first, then the ipxe dir through its links, else no path", () => {
    expect(describeBootFiles(boot, ipxe)).toEqual([
      { name: "undionly.kpxe" },
      { name: "ipxe.efi", path: join(elsewhere, "ipxe.efi") },
      { name: "snponly.efi", path: join(boot, "snponly.efi") },
    ]);
  });

  it("an operator's link in the boot folder leading out → reported refused, not the fallback", () => {
    symlinkSync(join(elsewhere, "ipxe.efi"), join(boot, "ipxe.efi"));
    const ipxeEfi = describeBootFiles(boot, ipxe).find((f) => f.name === "ipxe.efi");
    expect(ipxeEfi?.path).toBeUndefined();
    expect(ipxeEfi?.refused).toMatch(/must stay inside/);
  });

  it("a missing boot folder → the ipxe dir's files", () => {
    const files = describeBootFiles(join(tmp.dir, "absent"), ipxe);
    expect(files.find((f) => f.name === "snponly.efi")?.path).toBe(join(ipxe, "snponly.efi"));
  });
});
