/**
 * The log of a whole enrollment at `debug`, from a real edgejoin: every event an operator
 * watches for is a line of its own (discovered, boot script, enrolled, approved by whom, seat
 * assigned, k3s started, joined, failed sign-in, missing artifact), admin requests are `info`
 * lines with their request id, and no token, credential or k3s secret used on the way appears.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loopbackSettings, spawnServer, stopServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { agentFiles, enrollMachine, nodeCall, requestJson } from "../ui/machines.js";

type Line = { level: number; msg: string; [k: string]: unknown };

const adminToken = "operator-log-admin-token-0123456789abcdef";

describe("the operator's log of one machine's life", () => {
  it("at debug: every operator event is a line, admin requests at info with a request id, no secret anywhere", { timeout: 60_000 }, async () => {
    const root = testTempDir("operator-log");
    const server = spawnServer({ ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_LOG_LEVEL: "debug" });
    await waitHealthy(server);
    const mac = "52:54:00:10:6a:01";
    const secrets: Record<string, string> = { adminToken };

    expect((await fetch(`${server.url}/boot.ipxe?mac=${mac}`)).status).toBe(200);
    // What the seed carries that is secret: the progress token in the installer's URLs.
    const userData = await (await fetch(`${server.url}/cloud-init/${mac}/user-data`)).text();
    const progress = /install-progress\/[0-9a-f]+[^\s"']*[?&]token=([A-Za-z0-9_-]{16,})/.exec(userData)?.[1];
    expect(progress, "the default (autoinstall) user-data carries the installer's progress token").toBeDefined();
    secrets.progressToken = progress!;
    expect(agentFiles(userData)["bootstrap-token"]).toBeTruthy();
    const machine = await enrollMachine(server.url, mac, { serial: "SN-LOG-1", product: "Q35" });
    secrets.bootstrapToken = machine.token;
    secrets.credential = machine.credential;

    const approve = await requestJson("POST", `${server.url}/api/v1/nodes/${machine.nodeId}/approve`, { body: {}, bearer: adminToken });
    expect(approve.status, approve.text).toBe(200);
    const config = await nodeCall(machine, "GET", "/api/v1/node/config");
    expect(config.status, config.text).toBe(200);
    const k3s = parse((JSON.parse(config.text) as { config_yaml: string }).config_yaml) as Record<string, unknown>;
    for (const key of ["token", "agent-token"]) {
      expect(typeof k3s[key]).toBe("string");
      secrets[`k3s ${key}`] = k3s[key] as string;
    }
    const caHash = "a".repeat(64);
    for (const type of ["installing", "k3s-started", "ready"]) {
      const r = await nodeCall(machine, "POST", "/api/v1/node/events", { type, ca_hash: caHash });
      expect(r.status, r.text).toBeLessThan(300);
    }
    // A wrong admin token at the console, and a missing artifact.
    const signIn = await fetch(`${server.url}/ui/login`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await signIn.text())![1]!;
    const cookie = signIn.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
    const wrong = "wrong-admin-token-wrong-admin-token-000";
    secrets.wrongToken = wrong;
    const refused = await fetch(`${server.url}/ui/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ _csrf: csrf, token: wrong }),
      redirect: "manual",
    });
    expect(refused.status).toBe(401);
    // And a good one: the session id in its cookie is a secret too.
    const again = await fetch(`${server.url}/ui/login`);
    const csrf2 = /name="_csrf" value="([^"]+)"/.exec(await again.text())![1]!;
    const signedIn = await fetch(`${server.url}/ui/login`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: again.headers
          .getSetCookie()
          .map((c) => c.split(";")[0])
          .join("; "),
      },
      body: new URLSearchParams({ _csrf: csrf2, token: adminToken }),
      redirect: "manual",
    });
    expect(signedIn.status).toBe(303);
    secrets.sessionId = /edgejoin_session=([^;]+)/.exec(signedIn.headers.getSetCookie().join("\n"))![1]!;
    expect((await fetch(`${server.url}/artifacts/k3s/install.sh`)).status).toBe(404);
    await stopServer(server);

    const output = server.stdout() + server.stderr();
    for (const [name, secret] of Object.entries(secrets)) {
      expect(output.includes(secret), `${name} appears in the log`).toBe(false);
    }
    const lines = server
      .stdout()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Line);
    const one = (msg: string) => lines.find((l) => l.msg === msg);
    for (const msg of [
      "machine discovered",
      "installer served",
      "machine enrolled",
      "machine approved",
      "quorum seat assigned",
      "quorum k3s started",
      "machine joined",
    ]) {
      expect(one(msg), `no "${msg}" line`).toBeDefined();
      expect(one(msg)!.level).toBe(30);
    }
    expect(one("machine approved")!.actor).toBe("admin:env");
    expect(one("machine approved")!.machineId).toBe(machine.nodeId);
    expect(one("admin sign in failed")!.level).toBe(40);
    expect(one("admin signed in")!.actor).toBe("admin:env");
    expect(one("artifact not found")!.level).toBe(40);
    const adminRequest = lines.find((l) => l.msg === "request" && l.route === "/api/v1/nodes/:id/approve");
    expect(adminRequest?.level).toBe(30);
    expect(adminRequest?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    // Machines' own traffic stays at debug.
    expect(lines.find((l) => l.msg === "request" && l.route === "/api/v1/node/config")?.level).toBe(20);
  });
});
