/**
 * The agent's air-gap steps, run in sh against a loopback HTTP server: the images tarball lands in
 * k3s's images folder before the install script runs, registries.yaml is written (and removed when
 * the cluster drops it), and once a config names the syslog receiver the agent's lines reach it
 * over UDP through util-linux `logger`.
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { parseSyslog } from "../../server/syslog/parse.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { requireTools } from "../helpers/tools.js";

const agent = fileURLToPath(new URL("../../templates/agent/edgejoin-agent.sh", import.meta.url));
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function fileServer(files: Record<string, string>): Promise<string> {
  const server = createServer((req, res) => {
    const body = files[req.url ?? ""];
    res.writeHead(body === undefined ? 404 : 200).end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** Run install_k3s from the agent with `config` as the server's 200 body; progress reports are stubbed. Async: the test's HTTP server must keep answering. */
async function installWith(dir: string, config: object): Promise<{ status: number | null; stderr: string }> {
  requireTools({ sh: "dash", curl: "curl" });
  const state = join(dir, "state");
  mkdirSync(state, { recursive: true });
  writeFileSync(join(state, "response.json"), JSON.stringify(config));
  const child = spawn(
    "sh",
    ["-c", '. "$0"; NODE_URL=https://edgejoin.invalid:8443; CA_FILE=/nonexistent; report() { :; }; install_k3s && log "k3s installed"', agent],
    {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        EDGEJOIN_AGENT_FUNCTIONS_ONLY: "1",
        EDGEJOIN_AGENT_STATE_DIR: state,
        EDGEJOIN_AGENT_K3S_CONFIG: join(dir, "etc/config.yaml"),
        EDGEJOIN_AGENT_K3S_DATA: join(dir, "k3s"),
        EDGEJOIN_AGENT_BIN_DIR: join(dir, "bin"),
        TEST_DIR: dir,
      },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  return { status, stderr };
}

const body = (base: string, extra: object = {}) => ({
  role: "agent",
  k3s_version: "v1.31.4+k3s1",
  install: {
    script_url: `${base}/install.sh`,
    binary_url: null,
    env: { INSTALL_K3S_VERSION: "v1.31.4+k3s1", INSTALL_K3S_EXEC: "agent" },
    airgap_images_url: `${base}/k3s/v1.31.4%2Bk3s1/k3s-airgap-images-amd64.tar.zst`,
  },
  config_yaml: "server: https://10.0.0.1:6443\n",
  registries_yaml: 'mirrors:\n  docker.io:\n    endpoint:\n      - "http://registry.site.lan:5000"\n',
  syslog: null,
  ...extra,
});

describe("agent air-gap install", () => {
  it("images in k3s's images folder before the install script runs; registries.yaml beside config.yaml; removed when dropped", async () => {
    const base = await fileServer({
      // The stand-in install script records whether the images were already in place when it ran.
      "/install.sh":
        '#!/bin/sh\nif [ -s "$TEST_DIR/k3s/agent/images/k3s-airgap-images-amd64.tar.zst" ]; then echo yes; else echo no; fi >"$TEST_DIR/images-before-install"\n',
      "/k3s/v1.31.4%2Bk3s1/k3s-airgap-images-amd64.tar.zst": "zstd-bytes",
    });
    const dir = testTempDir("agent-airgap");
    const first = await installWith(dir, body(base));
    expect(first.status, first.stderr).toBe(0);
    expect(readFileSync(join(dir, "images-before-install"), "utf8")).toBe("yes\n");
    expect(readFileSync(join(dir, "k3s/agent/images/k3s-airgap-images-amd64.tar.zst"), "utf8")).toBe("zstd-bytes");
    expect(readFileSync(join(dir, "etc/registries.yaml"), "utf8")).toBe('mirrors:\n  docker.io:\n    endpoint:\n      - "http://registry.site.lan:5000"\n');

    const second = await installWith(dir, body(base, { registries_yaml: null, config_yaml: "server: https://10.0.0.2:6443\n" }));
    expect(second.status, second.stderr).toBe(0);
    expect(existsSync(join(dir, "etc/registries.yaml"))).toBe(false);
  });

  it("images that cannot be downloaded → the install stops before k3s is installed", async () => {
    const base = await fileServer({ "/install.sh": '#!/bin/sh\ntouch "$TEST_DIR/installed"\n' });
    const dir = testTempDir("agent-airgap");
    const r = await installWith(dir, body(base));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("cannot download");
    expect(existsSync(join(dir, "installed"))).toBe(false);
  });

  it("a config naming the syslog receiver → kept, and the agent's next lines arrive there over UDP", async () => {
    requireTools({ logger: "bsdutils" });
    const sock = createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const got: string[] = [];
    sock.on("message", (m) => got.push(m.toString()));
    try {
      const base = await fileServer({ "/install.sh": "#!/bin/sh\n", "/k3s/v1.31.4%2Bk3s1/k3s-airgap-images-amd64.tar.zst": "x" });
      const dir = testTempDir("agent-airgap");
      const r = await installWith(dir, body(base, { syslog: `127.0.0.1:${sock.address().port}` }));
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(dir, "state/syslog"), "utf8")).toBe(`127.0.0.1:${sock.address().port}\n`);
      const end = Date.now() + 3000;
      while (!got.some((l) => l.includes("edgejoin-agent")) && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
      expect(got.join("\n")).toMatch(/^<\d+>.*edgejoin-agent.* k3s installed$/m);
      // What util-linux logger sends is what edgejoin's receiver parses.
      const line = got.find((l) => l.includes("k3s installed"))!;
      expect(parseSyslog(Buffer.from(line))).toMatchObject({ app: "edgejoin-agent", message: "k3s installed" });
    } finally {
      sock.close();
    }
  });
});
