/**
 * The enrollment agent for real: `sh` runs the script exactly as user-data ships it, against an
 * edgejoin served on loopback ports (the seed over HTTP, the node API over HTTPS with a
 * certificate from a CA made for the test), with every path it touches pointed into a temp folder
 * and k3s replaced by a fake install script and a fake `k3s` served from the artifacts folder.
 */
import { serve, type ServerType } from "@hono/node-server";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { machines, nodeEvents } from "../../db/schema.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { requireTools } from "../helpers/tools.js";
import { eq } from "drizzle-orm";
import { expectValidUserData } from "../cloud-init/cloud-init-tools.js";
import { issueCa, issueServerCert } from "../../server/tls/ca.js";
import { freeTcpPort } from "../helpers/ports.js";
import { httpExchange } from "../quorum/harness.js";
import { edgejoin } from "../cli/helpers.js";
import { k3sYaml } from "../kubeconfig/k3s-yaml.js";

const k3sVersion = "v1.31.4+k3s1";

/** What the agent script runs on a fresh machine, by Debian package. */
const agentTools = { sh: "dash", curl: "curl", awk: "mawk", sha256sum: "coreutils" };

type Edgejoin = ReturnType<typeof makeTestApp> & { url: string; nodeUrl: string; caPem: string };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/**
 * edgejoin on 127.0.0.1: plain HTTP on one free port (its public URL), the node API's HTTPS on
 * another, with a server certificate for 127.0.0.1 from a CA of its own, as main binds them.
 */
async function startEdgejoin(artifactsDir: string): Promise<Edgejoin> {
  const now = Date.now();
  const ca = await issueCa(now);
  const cert = await issueServerCert(ca, "127.0.0.1", now);
  const [httpPort, httpsPort] = [await freeTcpPort(), await freeTcpPort()];
  const url = `http://127.0.0.1:${httpPort}`;
  const t = makeTestApp({
    env: { EDGEJOIN_PUBLIC_URL: url, EDGEJOIN_HTTPS_PORT: String(httpsPort), EDGEJOIN_ARTIFACTS_DIR: artifactsDir },
    caCertPem: ca.certPem,
  });
  const listen = (options: Parameters<typeof serve>[0]) =>
    new Promise<ServerType>((resolve) => {
      const server = serve(options, () => resolve(server));
      cleanups.push(() => new Promise<void>((done) => server.close(() => done())));
    });
  await listen({ fetch: t.app.fetch, hostname: "127.0.0.1", port: httpPort });
  await listen({
    fetch: t.app.fetch,
    hostname: "127.0.0.1",
    port: httpsPort,
    createServer: createHttpsServer,
    serverOptions: { key: cert.keyPem, cert: cert.certPem },
  });
  return { ...t, url, nodeUrl: t.config.nodeUrl, caPem: ca.certPem };
}

/** What cloud-init would leave on the machine: the agent and its four state files, from real user-data. */
async function prepareMachine(ej: Edgejoin, mac: string, root: string) {
  const res = await fetch(`${ej.url}/cloud-init/${mac}/user-data`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expectValidUserData(text);
  const doc = parse(text, { version: "1.1" }) as { autoinstall: { "user-data": { write_files: { path: string; content: string }[] } } };
  const files = Object.fromEntries(doc.autoinstall["user-data"].write_files.map((f) => [f.path, f.content]));
  const paths = {
    agent: join(root, "edgejoin-agent"),
    state: join(root, "var/lib/edgejoin-agent"),
    k3sConfig: join(root, "etc/rancher/k3s/config.yaml"),
    k3sData: join(root, "var/lib/rancher/k3s"),
    bin: join(root, "usr/local/bin"),
    dmi: join(root, "dmi"),
  };
  mkdirSync(paths.state, { recursive: true });
  mkdirSync(paths.dmi);
  writeFileSync(paths.agent, files["/usr/local/sbin/edgejoin-agent"]!, { mode: 0o755 });
  for (const name of ["node-url", "ca.pem", "mac", "bootstrap-token"]) {
    writeFileSync(join(paths.state, name), files[`/var/lib/edgejoin-agent/${name}`]!, { mode: 0o600 });
  }
  writeFileSync(join(paths.dmi, "product_uuid"), "8C3A5E2B-1D4F-4B6A-9C2E-7F1A0B3C4D5E\n");
  writeFileSync(join(paths.dmi, "product_serial"), "SN-$0001\n");
  return paths;
}

type AgentRun = { child: ChildProcess; stderr: () => string; exit: Promise<number | null> };

function runAgent(paths: Awaited<ReturnType<typeof prepareMachine>>, extraEnv: Record<string, string> = {}): AgentRun {
  let stderr = "";
  const child = spawn("sh", [paths.agent], {
    env: {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      EDGEJOIN_AGENT_STATE_DIR: paths.state,
      EDGEJOIN_AGENT_K3S_CONFIG: paths.k3sConfig,
      EDGEJOIN_AGENT_K3S_DATA: paths.k3sData,
      EDGEJOIN_AGENT_BIN_DIR: paths.bin,
      EDGEJOIN_AGENT_DMI_DIR: paths.dmi,
      // retry_after is 30 s while pending: the cap keeps the test quick.
      EDGEJOIN_AGENT_POLL_CAP: "1",
      EDGEJOIN_AGENT_READY_INTERVAL: "1",
      EDGEJOIN_AGENT_READY_TIMEOUT: "30",
      ...extraEnv,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { child, stderr: () => stderr, exit };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const v = probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function exitWithin(run: AgentRun, ms: number): Promise<number | null> {
  const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms));
  const code = await Promise.race([run.exit, timeout]);
  if (code === "timeout") throw new Error(`agent still running after ${ms} ms; its log:\n${run.stderr()}`);
  return code;
}

async function admin(ej: Edgejoin, path: string, body: unknown = {}) {
  const res = await fetch(`${ej.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
}

const machineByMac = (ej: Edgejoin, mac: string) => ej.db.select().from(machines).where(eq(machines.mac, mac)).get();
const stateFile = (paths: { state: string }, name: string) => (existsSync(join(paths.state, name)) ? readFileSync(join(paths.state, name), "utf8") : "");

/**
 * A fake k3s install script and binary in the artifacts folder, recording how they were run. Like
 * k3s starting as a server, the install writes the cluster admin's kubeconfig to `kubeconfig`.
 */
function fakeK3sArtifacts(artifacts: string, record: string, kubeconfig = join(record, "k3s.yaml")) {
  mkdirSync(join(artifacts, `k3s/${k3sVersion}`), { recursive: true });
  writeFileSync(join(record, "k3s.yaml.source"), k3sYaml);
  writeFileSync(
    join(artifacts, "k3s/install.sh"),
    [
      "#!/bin/sh",
      "set -e",
      `env | grep -E '^(INSTALL_K3S|K3S)_' | sort > '${record}/install-env'`,
      '[ "$INSTALL_K3S_SKIP_DOWNLOAD" = true ] && [ -x "$INSTALL_K3S_BIN_DIR/k3s" ] || { echo "no k3s binary" >&2; exit 1; }',
      `echo started > '${record}/k3s-service'`,
      `[ "$INSTALL_K3S_EXEC" != server ] || { mkdir -p '${join(kubeconfig, "..")}' && cp '${record}/k3s.yaml.source' '${kubeconfig}'; }`,
      "",
    ].join("\n"),
  );
  // `k3s kubectl get --raw=/readyz` fails twice (the API server is still starting), then succeeds.
  writeFileSync(
    join(artifacts, `k3s/${k3sVersion}/k3s`),
    [
      "#!/bin/sh",
      `n=$(cat '${record}/readyz-calls' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '${record}/readyz-calls'`,
      '[ "$1 $2 $3 $4" = "kubectl get --raw=/readyz " ] || exit 2',
      '[ "$n" -gt 2 ] && echo ok',
      "",
    ].join("\n"),
  );
}

describe("edgejoin-agent (sh) against a running edgejoin", () => {
  it("enroll → wait → restart keeps the credential → reject → credential revoked, the agent stops for good", async () => {
    requireTools(agentTools);
    const root = testTempDir("agent");
    const ej = await startEdgejoin(join(root, "artifacts"));
    const mac = "52:54:00:aa:00:01";
    const paths = await prepareMachine(ej, mac, root);

    const first = runAgent(paths);
    await waitFor(
      "pending machine polling for approval",
      // The status file is written just before the log line: wait for both.
      () => machineByMac(ej, mac)?.state === "pending" && stateFile(paths, "status").includes("pending_approval") && first.stderr().includes("next poll in"),
    );
    const m = machineByMac(ej, mac)!;
    expect(m).toMatchObject({ uuid: "8c3a5e2b-1d4f-4b6a-9c2e-7f1a0b3c4d5e", serial: "SN-0001" });
    // The credential is root-only, the spent bootstrap token gone.
    expect(statSync(join(paths.state, "credential")).mode & 0o777).toBe(0o600);
    expect(statSync(paths.state).mode & 0o777).toBe(0o700);
    expect(existsSync(join(paths.state, "bootstrap-token"))).toBe(false);
    expect(first.stderr()).toContain("next poll in 1s");

    // A reboot: the agent comes back with its credential, without enrolling again.
    first.child.kill("SIGTERM");
    await exitWithin(first, 5_000);
    const second = runAgent(paths);
    await waitFor("second run polling", () => second.stderr().includes("waiting (pending_approval)"));
    expect(second.stderr()).not.toContain("enrolled");

    // A reject revokes the machine's credentials (PRODUCT.md, "Credentials die with the decision"):
    // the agent is refused for good (exit 3, which its unit does not restart).
    await admin(ej, `/api/v1/nodes/${m.id}/reject`, { reason: "not ours" });
    expect(await exitWithin(second, 10_000)).toBe(3);
    expect(second.stderr()).toContain("node credential refused: credential_revoked");

    const third = runAgent(paths);
    expect(await exitWithin(third, 10_000)).toBe(3);
    expect(third.stderr()).toContain("credential_revoked");
  });

  it("enroll → approve through the API → init server: k3s config 0600, fake install with the given env, k3s-started, ready with the CA hash, kubeconfig handed in; then an agent joins", async () => {
    requireTools(agentTools);
    const root = testTempDir("agent");
    const artifacts = join(root, "artifacts");
    const record = join(root, "record");
    mkdirSync(record);
    const kubeconfig = join(root, "etc/rancher/k3s/k3s.yaml");
    fakeK3sArtifacts(artifacts, record, kubeconfig);
    const ej = await startEdgejoin(artifacts);
    const mac = "52:54:00:aa:00:02";
    const paths = await prepareMachine(ej, mac, root);
    mkdirSync(join(paths.k3sData, "server/tls"), { recursive: true });
    writeFileSync(join(paths.k3sData, "server/tls/server-ca.crt"), "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n");
    const caHash = createHash("sha256")
      .update(readFileSync(join(paths.k3sData, "server/tls/server-ca.crt")))
      .digest("hex");

    const run = runAgent(paths, { EDGEJOIN_AGENT_KUBECONFIG: kubeconfig });
    await waitFor("pending", () => machineByMac(ej, mac)?.state === "pending");
    const m = machineByMac(ej, mac)!;
    await admin(ej, `/api/v1/nodes/${m.id}/approve`, {});
    expect(await exitWithin(run, 30_000), run.stderr()).toBe(0);
    expect(run.stderr()).toContain("node is ready as init");
    // After ready, the agent handed edgejoin the kubeconfig k3s wrote (over HTTPS, its credential).
    expect(run.stderr()).toContain("handed edgejoin the cluster's kubeconfig");
    expect(run.stderr().indexOf("handed edgejoin")).toBeLessThan(run.stderr().indexOf("node is ready as init"));

    const joined = machineByMac(ej, mac)!;
    expect(joined).toMatchObject({ state: "joined", role: "init", caHash });
    const events = ej.db.select().from(nodeEvents).where(eq(nodeEvents.machineId, m.id)).all();
    expect(events.filter((e) => e.source === "agent").map((e) => [e.type, e.caHash])).toEqual([
      ["installing", null],
      ["k3s-started", null],
      ["ready", caHash],
    ]);

    // What the server handed out is exactly what landed on disk, root-only.
    const credential = stateFile(paths, "credential").trim();
    const answer = await httpExchange("GET", `${ej.nodeUrl}/api/v1/node/config`, {
      headers: { authorization: `Bearer ${credential}` },
      ca: ej.caPem,
      timeoutMs: 10_000,
    });
    const config = JSON.parse(answer.text) as { config_yaml: string };
    expect(readFileSync(paths.k3sConfig, "utf8")).toBe(config.config_yaml);
    expect(config.config_yaml).toContain("cluster-init: true");
    expect(statSync(paths.k3sConfig).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(record, "install-env"), "utf8")).toBe(
      [`INSTALL_K3S_BIN_DIR=${paths.bin}`, "INSTALL_K3S_EXEC=server", "INSTALL_K3S_SKIP_DOWNLOAD=true", `INSTALL_K3S_VERSION=${k3sVersion}`, ""].join("\n"),
    );
    expect(readFileSync(join(paths.bin, "k3s"), "utf8")).toBe(readFileSync(join(artifacts, `k3s/${k3sVersion}/k3s`), "utf8"));
    expect(Number(readFileSync(join(record, "readyz-calls"), "utf8"))).toBe(3);

    // The admin gets it pointed at the registration address, from the API and from the real CLI.
    const patched = await fetch(`${ej.url}/api/v1/clusters/1`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ registration_address: "k3s.site.example" }),
    });
    expect(patched.status).toBe(200);
    const viaApi = await fetch(`${ej.url}/api/v1/clusters/1/kubeconfig`, { headers: { authorization: `Bearer ${testAdminToken}` } });
    expect(viaApi.status).toBe(200);
    const got = parse(await viaApi.text()) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    expect(got.clusters[0]!.cluster).toEqual({ "certificate-authority-data": "LS0tLS1CRUdJTi1DQS0tLS0t", server: "https://k3s.site.example:6443" });
    expect(got.users[0]!.user["client-key-data"]).toBe((parse(k3sYaml) as typeof got).users[0]!.user["client-key-data"]);
    const cli = await edgejoin(["clusters", "kubeconfig", "default"], { EDGEJOIN_URL: ej.url, EDGEJOIN_ADMIN_TOKEN: testAdminToken });
    expect(cli.code, cli.stderr).toBe(0);
    expect(parse(cli.stdout)).toEqual(got);

    // Next boot: joined, nothing to do, nothing reported.
    const again = runAgent(paths);
    expect(await exitWithin(again, 5_000)).toBe(0);
    expect(again.stderr()).toContain("already joined");
    expect(ej.db.select().from(nodeEvents).where(eq(nodeEvents.machineId, m.id)).all()).toHaveLength(events.length);

    // A second machine becomes an agent; its readiness is the kubelet's health endpoint.
    const kubelet: Server = createServer((req, res) => res.end(req.url === "/healthz" ? "ok" : "no"));
    await new Promise<void>((r) => kubelet.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => kubelet.close(() => r())));
    const agentRoot = join(root, "second");
    mkdirSync(agentRoot);
    const agentMac = "52:54:00:aa:00:03";
    const agentPaths = await prepareMachine(ej, agentMac, agentRoot);
    const agentRun = runAgent(agentPaths, { EDGEJOIN_AGENT_KUBELET_HEALTHZ: `http://127.0.0.1:${(kubelet.address() as AddressInfo).port}/healthz` });
    await waitFor("second machine pending", () => machineByMac(ej, agentMac)?.state === "pending");
    await admin(ej, `/api/v1/nodes/${machineByMac(ej, agentMac)!.id}/approve`, {});
    expect(await exitWithin(agentRun, 30_000), agentRun.stderr()).toBe(0);
    expect(machineByMac(ej, agentMac)).toMatchObject({ state: "joined", role: "agent" });
    expect(readFileSync(agentPaths.k3sConfig, "utf8")).not.toContain("cluster-init");
    expect(readFileSync(join(record, "install-env"), "utf8")).toContain("INSTALL_K3S_EXEC=agent");
  });

  it("a plain http:// node URL → the agent refuses it (exit 3) and sends nothing; a CA that is not edgejoin's → TLS refused, never enrolled", async () => {
    requireTools(agentTools);
    const root = testTempDir("agent");
    const ej = await startEdgejoin(join(root, "artifacts"));
    const mac = "52:54:00:aa:00:05";
    const paths = await prepareMachine(ej, mac, root);
    expect(stateFile(paths, "node-url")).toBe(ej.nodeUrl);

    // Someone rewrote the node URL to plain http (the HTTP port answers the node API with 403 anyway).
    writeFileSync(join(paths.state, "node-url"), `${ej.url}\n`);
    const plain = runAgent(paths);
    expect(await exitWithin(plain, 10_000)).toBe(3);
    expect(plain.stderr()).toContain(`the node URL must be https://, refusing ${ej.url}`);

    // The right URL but another CA: curl refuses the server's certificate, the token never leaves.
    writeFileSync(join(paths.state, "node-url"), `${ej.nodeUrl}\n`);
    writeFileSync(join(paths.state, "ca.pem"), (await issueCa(Date.now())).certPem);
    const stranger = runAgent(paths);
    await waitFor("a refused TLS handshake", () => stranger.stderr().includes("enroll failed (HTTP 000)"));
    expect(stranger.stderr()).toMatch(/SSL certificate problem|certificate/i);
    stranger.child.kill("SIGTERM");
    await exitWithin(stranger, 5_000);
    expect(machineByMac(ej, mac)?.state).toBe("discovered");
    expect(existsSync(join(paths.state, "bootstrap-token"))).toBe(true);

    // Its own CA back: the same token enrolls.
    writeFileSync(join(paths.state, "ca.pem"), ej.caPem);
    const good = runAgent(paths);
    await waitFor("enrolled over https", () => machineByMac(ej, mac)?.state === "pending");
    good.child.kill("SIGTERM");
    await exitWithin(good, 5_000);
  });

  it("a failing install script → `failed` reported with the script's output, exit non-zero for systemd to retry", async () => {
    requireTools(agentTools);
    const root = testTempDir("agent");
    const artifacts = join(root, "artifacts");
    mkdirSync(join(artifacts, "k3s"), { recursive: true });
    writeFileSync(join(artifacts, "k3s/install.sh"), "#!/bin/sh\necho 'cannot reach github.com' >&2\nexit 7\n");
    const ej = await startEdgejoin(artifacts);
    const mac = "52:54:00:aa:00:04";
    const paths = await prepareMachine(ej, mac, root);
    const run = runAgent(paths);
    await waitFor("pending", () => machineByMac(ej, mac)?.state === "pending");
    await admin(ej, `/api/v1/nodes/${machineByMac(ej, mac)!.id}/approve`, {});
    expect(await exitWithin(run, 30_000)).toBe(1);
    const failed = ej.db.select().from(nodeEvents).where(eq(nodeEvents.type, "failed")).get();
    expect(failed?.detail).toContain("cannot reach github.com");
  });
});
