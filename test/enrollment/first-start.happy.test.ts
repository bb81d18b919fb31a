/**
 * The real server process: the admin token shown once at first start (on stderr, not in the
 * log), and `edgejoin keys rotate` against the running server, surviving a restart.
 */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loopbackSettings, spawnServer, stopServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";

const cli = fileURLToPath(new URL("../../bin/edgejoin.js", import.meta.url));

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
    const root = testTempDir("start");
    const env: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_IPXE_DIR: join(root, "no-ipxe") };
    const url = env.EDGEJOIN_PUBLIC_URL!;

    const first = spawnServer(env, "cli");
    await waitHealthy(first);
    // Printed once every listener is bound, HTTPS a moment after the HTTP that /healthz answers on.
    for (let i = 0; i < 100 && !/^ {4}\S{43}$/m.test(first.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    const shown = /^ {4}([A-Za-z0-9_-]{43})$/m.exec(first.stderr());
    expect(shown, first.stderr()).not.toBeNull();
    const adminToken = shown![1]!;
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
    await stopServer(first);
    // Checked once the first run is over: nothing it ever logged holds the token.
    expect(first.stdout()).not.toContain(adminToken);

    const second = spawnServer(env, "cli");
    await waitHealthy(second);
    expect(second.stderr()).not.toMatch(/admin token/);
    expect((await fetch(`${url}/api/v1/nodes`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(200);
    const again = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(again.keys.map((k) => k.kid)).toEqual([newKid, firstKid]);
  }, 60_000);
});
