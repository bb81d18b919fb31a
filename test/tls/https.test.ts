/**
 * The node API over real TLS, against the edgejoin process: curl pinning edgejoin's CA enrolls
 * over https; the same request over plain HTTP gets 403 tls_required; clients that do not trust
 * the CA are refused by TLS itself; a neighbour on 127.0.0.2 talking plain HTTP gets nothing
 * secret; a new public host gets a new server certificate from the same CA.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { issueCa } from "../../server/tls/ca.js";
import { agentFilesOf } from "../quorum/harness.js";
import { loopbackSettings, nodeUrlOf, spawnServer, stopServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { requireTools, run } from "../helpers/tools.js";

const adminToken = "https-test-admin-token-0123456789abcdef";
const mac = "52:54:00:aa:bb:01";

/** curl with `args`; the status code is the last line of stdout. */
async function curl(args: string[]): Promise<{ code: number; status: number; body: string; stderr: string }> {
  const r = await run("curl", ["-sS", "--max-time", "10", "-w", "\n%{http_code}", ...args]);
  const out = r.stdout.toString();
  const cut = out.lastIndexOf("\n");
  return { code: r.code, status: Number(out.slice(cut + 1)), body: out.slice(0, Math.max(cut, 0)), stderr: r.stderr };
}

const postJson = (body: unknown) => ["-X", "POST", "-H", "content-type: application/json", "--data-binary", JSON.stringify(body)];

describe("node API over HTTPS, edgejoin's own CA", () => {
  it("curl --cacert enrolls over https; plain http → 403 tls_required and the token stays unspent; untrusting clients are refused", async () => {
    requireTools({ curl: "curl" });
    const root = testTempDir("https");
    const env: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken };
    const server = spawnServer(env);
    await waitHealthy(server);
    expect(server.nodeUrl).toBe(`https://127.0.0.1:${env.EDGEJOIN_HTTPS_PORT}`);

    // The CA was made at first start; its key is 0600; it is public at the well-known path.
    const caPem = readFileSync(server.caFile, "utf8");
    expect(statSync(join(root, "data/tls/ca.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "data/tls/server.key")).mode & 0o777).toBe(0o600);
    const published = await curl([`${server.url}/.well-known/edgejoin-ca.pem`]);
    expect(published.body).toBe(caPem);
    // The fingerprint admins pin by is in the start-up log.
    expect(server.stdout()).toContain(new X509Certificate(caPem).fingerprint256);

    // A machine boots and fetches its seed over plain HTTP, as iPXE and cloud-init do.
    expect((await curl([`${server.url}/boot.ipxe?mac=${encodeURIComponent(mac)}`])).status).toBe(200);
    const userData = await curl([`${server.url}/cloud-init/${mac}/user-data`]);
    expect(userData.status).toBe(200);
    const agent = agentFilesOf(userData.body);
    expect(agent.nodeUrl).toBe(server.nodeUrl);
    expect(agent.ca).toBe(caPem);
    const enroll = { token: agent.token, mac, arch: "x86_64" };

    // Plain HTTP: refused before anything happens, no credential in the answer.
    const plain = await curl([...postJson(enroll), `${server.url}/api/v1/enroll`]);
    expect(plain.status).toBe(403);
    expect(JSON.parse(plain.body)).toMatchObject({ error: "tls_required" });
    expect(plain.body).not.toContain("credential");

    // Clients that do not trust edgejoin's CA never get to send the token: TLS refuses first.
    const systemStore = await curl([...postJson(enroll), `${server.nodeUrl}/api/v1/enroll`]);
    expect(systemStore.code, systemStore.stderr).toBe(60);
    const strangerCa = join(root, "stranger-ca.pem");
    writeFileSync(strangerCa, (await issueCa(Date.now())).certPem);
    const stranger = await curl(["--cacert", strangerCa, ...postJson(enroll), `${server.nodeUrl}/api/v1/enroll`]);
    expect(stranger.code, stranger.stderr).toBe(60);
    const nodeFetch = await fetch(`${server.nodeUrl}/healthz`).then(
      () => "answered",
      (err: Error) => String((err.cause as { code?: string } | undefined)?.code ?? err.message),
    );
    expect(nodeFetch).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);

    // Pinning the CA: the same token, never spent by the refusals above, enrolls.
    const caFile = join(root, "ca.pem");
    writeFileSync(caFile, agent.ca);
    const secure = await curl(["--cacert", caFile, "--proto", "=https", ...postJson(enroll), `${agent.nodeUrl}/api/v1/enroll`]);
    expect(secure.status, secure.body + secure.stderr).toBe(201);
    const { credential } = JSON.parse(secure.body) as { credential: string };
    const config = await curl(["--cacert", caFile, "-H", `authorization: Bearer ${credential}`, `${agent.nodeUrl}/api/v1/node/config`]);
    expect(config.status).toBe(202);
    // ...and that credential is refused over plain HTTP too.
    const plainConfig = await curl(["-H", `authorization: Bearer ${credential}`, `${server.url}/api/v1/node/config`]);
    expect(plainConfig.status).toBe(403);
    expect(JSON.parse(plainConfig.body)).toMatchObject({ error: "tls_required" });
  });

  it("a neighbour on 127.0.0.2 over plain HTTP: seed yes, but enroll, config and events give nothing secret and change nothing", async () => {
    requireTools({ curl: "curl" });
    const root = testTempDir("https");
    const env: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken };
    const server = spawnServer(env);
    await waitHealthy(server);
    const neighbour = ["--interface", "127.0.0.2"];
    await curl([...neighbour, `${server.url}/boot.ipxe?mac=${encodeURIComponent(mac)}`]);
    const seed = await curl([...neighbour, `${server.url}/cloud-init/${mac}/user-data`]);
    expect(seed.status).toBe(200);
    const { token } = agentFilesOf(seed.body);
    const answers = [
      await curl([...neighbour, ...postJson({ token, mac }), `${server.url}/api/v1/enroll`]),
      await curl([...neighbour, "-H", `authorization: Bearer ${token}`, `${server.url}/api/v1/node/config`]),
      await curl([...neighbour, "-H", `authorization: Bearer ${token}`, ...postJson({ type: "ready" }), `${server.url}/api/v1/node/events`]),
    ];
    for (const a of answers) {
      expect(a.status).toBe(403);
      expect(JSON.parse(a.body)).toMatchObject({ error: "tls_required" });
      expect(a.body).not.toMatch(/credential"|eyJ|agent-token|token:/);
    }
    const nodes = await curl(["-H", `authorization: Bearer ${adminToken}`, `${server.url}/api/v1/nodes`]);
    const list = JSON.parse(nodes.body) as { nodes: { mac: string; state: string }[] };
    expect(list.nodes.find((n) => n.mac === mac)?.state).toBe("discovered");
  });

  it("public host changed → the next start serves a certificate for the new host, from the same CA", async () => {
    requireTools({ curl: "curl" });
    const root = testTempDir("https");
    const env: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken };
    const first = spawnServer(env);
    await waitHealthy(first);
    const caPem = readFileSync(first.caFile, "utf8");
    const byIp = await curl(["--cacert", first.caFile, `${first.nodeUrl}/healthz`]);
    expect(byIp.status, byIp.stderr).toBe(200);
    await stopServer(first);

    const moved = { ...env, EDGEJOIN_PUBLIC_URL: env.EDGEJOIN_PUBLIC_URL!.replace("127.0.0.1", "localhost") };
    const second = spawnServer(moved);
    await waitHealthy(second);
    expect(readFileSync(second.caFile, "utf8")).toBe(caPem);
    expect(second.nodeUrl).toBe(nodeUrlOf(moved));
    const byName = await curl(["--cacert", second.caFile, `${second.nodeUrl}/healthz`]);
    expect(byName.status, byName.stderr).toBe(200);
    // The old host is no longer in the certificate: curl refuses it (60 on curl 7.88, 51 before).
    const oldHost = await curl(["--cacert", second.caFile, `${first.nodeUrl}/healthz`]);
    expect([51, 60]).toContain(oldHost.code);
  });
});
