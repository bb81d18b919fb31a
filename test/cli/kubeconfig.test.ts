/**
 * Reaching the cluster: the agent script's `upload_kubeconfig`, run by `sh` as the init server
 * runs it after ready (node credential, edgejoin's CA, HTTPS), then `edgejoin clusters kubeconfig`
 * against the same real server.
 */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { agentFilesOf, httpExchange } from "../quorum/harness.js";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { edgejoin } from "./helpers.js";
import { k3sYaml } from "../kubeconfig/k3s-yaml.js";

const agent = fileURLToPath(new URL("../../templates/agent/edgejoin-agent.sh", import.meta.url));
const adminToken = "cli-kubeconfig-admin-token-0123456789";
const mac = "52:54:00:6b:75:01";

/** Run one agent function with `sh`, the script loaded alone; resolves with its exit code and log. */
function agentFunction(script: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", `. "${agent}"; ${script}`], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", EDGEJOIN_AGENT_FUNCTIONS_ONLY: "1", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`agent function did not finish within 60 s:\n${stderr}`));
    }, 60_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe("the cluster's kubeconfig, from the init server's agent to the admin's CLI", () => {
  it("init server ready → agent uploads k3s.yaml over TLS → clusters kubeconfig -o FILE points at the registration address", async () => {
    const root = testTempDir("cli-kubeconfig");
    const settings: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_LOG_LEVEL: "warn" };
    const server = spawnServer(settings);
    await waitHealthy(server);
    const env = { EDGEJOIN_URL: server.url, EDGEJOIN_ADMIN_TOKEN: adminToken };

    // The machine's life up to ready, as its agent would live it.
    await (await fetch(`${server.url}/boot.ipxe?mac=${mac}&serial=KUBE-1`)).text();
    const userData = await (await fetch(`${server.url}/cloud-init/${mac}/user-data`)).text();
    const { token, nodeUrl, ca } = agentFilesOf(userData);
    const node = (method: string, path: string, body?: unknown, credential?: string) =>
      httpExchange(method, `${nodeUrl}${path}`, {
        ca,
        timeoutMs: 20_000,
        headers: { "content-type": "application/json", ...(credential ? { authorization: `Bearer ${credential}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const enrolled = await node("POST", "/api/v1/enroll", {
      token,
      mac,
      uuid: "",
      serial: "KUBE-1",
      hostname: "kube-1",
      ip: "127.0.0.1",
      arch: "x86_64",
      facts: {},
    });
    expect(enrolled.status, enrolled.text).toBe(201);
    const { credential } = JSON.parse(enrolled.text) as { credential: string };
    expect((await edgejoin(["nodes", "approve", mac], env)).code).toBe(0);
    const config = await node("GET", "/api/v1/node/config", undefined, credential);
    expect(JSON.parse(config.text)).toMatchObject({ role: "init" });
    expect((await node("POST", "/api/v1/node/events", { type: "k3s-started" }, credential)).status).toBe(202);

    // The agent's files, as cloud-init and enroll left them.
    const state = join(root, "agent-state");
    mkdirSync(state, { recursive: true, mode: 0o700 });
    writeFileSync(join(state, "credential"), `${credential}\n`, { mode: 0o600 });
    writeFileSync(join(state, "ca.pem"), ca);
    const kubeconfig = join(root, "k3s.yaml");
    writeFileSync(kubeconfig, k3sYaml, { mode: 0o600 });
    const agentEnv = { EDGEJOIN_AGENT_STATE_DIR: state, EDGEJOIN_AGENT_KUBECONFIG: kubeconfig };
    const upload = `NODE_URL=${nodeUrl}; CA_FILE="$STATE_DIR/ca.pem"; write_auth_header; upload_kubeconfig`;

    // Before ready it is refused (only a ready init server may), and the agent goes on.
    const early = await agentFunction(upload, agentEnv);
    expect(early.code).toBe(0);
    expect(early.stderr).toMatch(/edgejoin refused the kubeconfig: forbidden: only a cluster's init server/);
    expect((await edgejoin(["clusters", "kubeconfig", "default"], env)).stderr).toMatch(/^edgejoin: 404 not_found: cluster default has no kubeconfig yet/);

    expect((await node("POST", "/api/v1/node/events", { type: "ready", ca_hash: "c0ffee".padEnd(64, "0") }, credential)).status).toBe(202);
    const sent = await agentFunction(upload, agentEnv);
    expect(sent, sent.stderr).toMatchObject({ code: 0 });
    expect(sent.stderr).toMatch(/handed edgejoin the cluster's kubeconfig/);

    const patched = await fetch(`${server.url}/api/v1/clusters/1`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ registration_address: "k3s.site.example" }),
    });
    expect(patched.status).toBe(200);
    const out = join(root, "kubeconfig");
    const got = await edgejoin(["clusters", "kubeconfig", "default", "-o", out], env);
    expect(got.code, got.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const k = parse(readFileSync(out, "utf8"));
    expect(k.clusters).toEqual([
      { name: "default", cluster: { "certificate-authority-data": "LS0tLS1CRUdJTi1DQS0tLS0t", server: "https://k3s.site.example:6443" } },
    ]);
    expect(k.users[0].user["client-key-data"]).toBe("LS0tLS1LRVktLS0tLQ==");
    const shown = await edgejoin(["clusters", "show", "default"], env);
    expect(shown.stdout).toMatch(/^kubeconfig:\s+uploaded /m);
  }, 90_000);
});
