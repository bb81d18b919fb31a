/**
 * The real server process: the admin token shown once at first start (on stderr, not in the
 * log), and `edgejoin keys rotate` against the running server, surviving a restart.
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../../bin/edgejoin.js", import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) await stop(child);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

type Running = { child: ChildProcess; stdout: () => string; stderr: () => string };

/** Start `edgejoin serve` and wait (at most 20 s) until it says it is serving. */
async function serve(env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [cli, "serve"], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 20_000;
  while (!out.includes("edgejoin is serving")) {
    if (child.exitCode !== null) throw new Error(`edgejoin exited ${child.exitCode}: ${err}${out}`);
    if (Date.now() > deadline) throw new Error(`edgejoin did not start within 20 s: ${err}${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stdout: () => out, stderr: () => err };
}

/** Run the CLI to completion (at most 20 s). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`CLI ${args.join(" ")} did not finish within 20 s`));
    }, 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("edgejoin serve, first start and restart", () => {
  it("no EDGEJOIN_ADMIN_TOKEN → token shown once on stderr, never logged; keys rotate via the CLI survives a restart", async () => {
    const root = mkdtempSync(join(tmpdir(), "edgejoin-start-"));
    dirs.push(root);
    mkdirSync(join(root, "boot"));
    const http = await freeTcpPort();
    const url = `http://127.0.0.1:${http}`;
    const env = {
      EDGEJOIN_PUBLIC_URL: url,
      EDGEJOIN_HTTP_HOST: "127.0.0.1",
      EDGEJOIN_HTTP_PORT: String(http),
      EDGEJOIN_TFTP_HOST: "127.0.0.1",
      EDGEJOIN_TFTP_PORT: String(await freeUdpPort()),
      EDGEJOIN_DATA_DIR: join(root, "data"),
      EDGEJOIN_BOOT_DIR: join(root, "boot"),
      EDGEJOIN_IPXE_DIR: join(root, "no-ipxe"),
    };

    const first = await serve(env);
    const shown = /^ {4}([A-Za-z0-9_-]{43})$/m.exec(first.stderr());
    expect(shown, first.stderr()).not.toBeNull();
    const adminToken = shown![1]!;
    expect(first.stdout()).not.toContain(adminToken);
    const ok = await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(ok.status).toBe(200);
    expect((await fetch(`${url}/api/v1/nodes`, { headers: { authorization: "Bearer nope-nope-nope-nope-nope-nope" } })).status).toBe(401);

    const keysDir = join(root, "data", "keys");
    const [firstKeyFile] = readdirSync(keysDir);
    expect(statSync(join(keysDir, firstKeyFile!)).mode & 0o777).toBe(0o600);
    const firstKid = firstKeyFile!.replace(/\.json$/, "");

    const refused = await runCli(["keys", "rotate"], { EDGEJOIN_URL: url, EDGEJOIN_ADMIN_TOKEN: "wrong-wrong-wrong-wrong-wrong" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("401 unauthorized");
    const rotated = await runCli(["keys", "rotate"], { EDGEJOIN_URL: url, EDGEJOIN_ADMIN_TOKEN: adminToken });
    expect(rotated.code, rotated.stderr).toBe(0);
    const m = /^active key (\S+); retired (\S+) /.exec(rotated.stdout);
    expect(m?.[2]).toBe(firstKid);
    const newKid = m![1]!;
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual([newKid, firstKid]);
    expect(readdirSync(keysDir)).toEqual([`${newKid}.json`]);
    await stop(first.child);

    const second = await serve(env);
    expect(second.stderr()).not.toMatch(/admin token/);
    expect((await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(200);
    const again = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(again.keys.map((k) => k.kid)).toEqual([newKid, firstKid]);
  }, 60_000);
});
