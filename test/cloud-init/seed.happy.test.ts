import { eq } from "drizzle-orm";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { auditEvents, clusters, machines } from "../../db/schema.js";
import { verifyBootstrapToken } from "../../server/enrollment/tokens.js";
import { progressTokenFor } from "../../server/store/install-progress.js";
import { makeTestApp, testCaCertPem, testConfig, testPublicUrl } from "../helpers/app.js";
import { expectGolden } from "../helpers/golden.js";
import { testTempDir } from "../helpers/temp-dir.js";

const mac = "52:54:00:12:34:56";
type WriteFile = { path: string; content: string; permissions: string };

/** The user-data with its secrets replaced by placeholders, for golden files and reports. */
function redactUserData(text: string): string {
  return text.replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, "<bootstrap-token>").replace(/token=[A-Za-z0-9_%-]+/g, "token=<progress-token>");
}

function writeFiles(doc: { write_files: WriteFile[] }) {
  return Object.fromEntries(doc.write_files.map((f) => [f.path, f]));
}

describe("GET /cloud-init/:mac/*", () => {
  it("meta-data for an unknown MAC → machine recorded as discovered, stable instance-id, hostname from the pattern", async () => {
    const { app, db } = makeTestApp();
    const res = await app.request(`/cloud-init/${mac}/meta-data`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toBe("instance-id: edgejoin-525400123456\nlocal-hostname: node-525400123456\n");
    const [m] = db.select().from(machines).all();
    expect(m).toMatchObject({ mac, state: "discovered", hostname: "node-525400123456" });
    const audit = db.select().from(auditEvents).where(eq(auditEvents.action, "machine.discovered")).all();
    expect(audit[0]?.detail).toMatchObject({ via: "cloud-init" });
    // Asked again (next boot, other spelling of the MAC): the same answer, no second machine.
    const again = await app.request(`/cloud-init/52-54-00-12-34-56/meta-data`);
    expect(await again.text()).toBe(text);
    expect(db.select().from(machines).all()).toHaveLength(1);
  });

  it("the forms cloud-init requests (trailing slash, query string) → the same documents", async () => {
    const { app } = makeTestApp();
    for (const path of [`/cloud-init/${mac}/meta-data/`, `/cloud-init/${mac}/meta-data?instance=1`, `/cloud-init/${mac}/meta-data/?x=y`]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(200);
      expect(await res.text()).toContain("local-hostname: node-525400123456");
    }
    const vendor = await app.request(`/cloud-init/${mac}/vendor-data/`);
    expect(vendor.status).toBe(200);
    expect(await vendor.text()).toBe("");
  });

  it("hostname pattern collision in the cluster → the second machine gets -<id>", async () => {
    const { app, db } = makeTestApp();
    db.update(clusters).set({ hostnamePattern: "edge-{cluster}" }).run();
    await app.request(`/cloud-init/${mac}/meta-data`);
    const res = await app.request(`/cloud-init/52:54:00:00:00:02/meta-data`);
    expect(await res.text()).toContain("local-hostname: edge-default-2\n");
    expect(
      db
        .select({ h: machines.hostname })
        .from(machines)
        .all()
        .map((r) => r.h),
    ).toEqual(["edge-default", "edge-default-2"]);
  });

  it("network-config → v2 DHCP on the NIC with this MAC", async () => {
    const { app } = makeTestApp();
    const res = await app.request(`/cloud-init/${mac}/network-config`);
    expect(res.status).toBe(200);
    expect(parse(await res.text())).toEqual({ version: 2, ethernets: { netboot: { match: { macaddress: mac }, dhcp4: true, dhcp6: true } } });
  });

  it("user-data (ubuntu-autoinstall, the default) → autoinstall section with webhook, agent, and a bootstrap token bound to MAC and cluster", async () => {
    const { app, db, keyring, clock } = makeTestApp();
    const res = await app.request(`/cloud-init/${mac}/user-data`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expectGolden("cloud-init/ubuntu-autoinstall.user-data", redactUserData(text));
    const doc = parse(text, { version: "1.1" }) as { autoinstall: Record<string, any> };
    expect(Object.keys(doc)).toEqual(["autoinstall"]);
    const ai = doc.autoinstall;
    expect(ai.version).toBe(1);
    expect(ai.identity).toEqual({ hostname: "node-525400123456", username: "edgejoin", password: "!" });
    const files = writeFiles(ai["user-data"]);
    const token = files["/var/lib/edgejoin-agent/bootstrap-token"]!.content;
    const claims = await verifyBootstrapToken(keyring, token, { issuer: testPublicUrl, now: clock() });
    const m = db.select().from(machines).get()!;
    expect(claims).toMatchObject({ mac, clusterId: m.clusterId });
    expect(files["/var/lib/edgejoin-agent/bootstrap-token"]!.permissions).toBe("0600");
    // The agent gets the https node URL (public URL's host, the HTTPS port) and the CA it pins.
    expect(files["/var/lib/edgejoin-agent/node-url"]!.content).toBe("https://10.77.0.1:8443");
    expect(files["/var/lib/edgejoin-agent/ca.pem"]!.content).toBe(testCaCertPem);
    expect(files["/var/lib/edgejoin-agent/ca.pem"]!.permissions).toBe("0644");
    expect(files["/var/lib/edgejoin-agent/mac"]!.content).toBe(mac);
    expect(files["/usr/local/sbin/edgejoin-agent"]!.content).toMatch(/^#!\/bin\/sh\n/);
    // The webhook URL carries the progress token.
    const endpoint = new URL(ai.reporting.edgejoin.endpoint as string);
    expect(endpoint.pathname).toBe("/install-progress/525400123456");
    // One progress token per install, derived from a server key and never stored: a later seed
    // fetch (a retry, or a neighbour's) hands out the same one instead of breaking the installer's.
    expect(endpoint.searchParams.get("token")).toBe(progressTokenFor(db, m));
  });

  it("user-data (cloud-image cluster) → plain cloud-config with the agent and its unit, no installer", async () => {
    const { app, db } = makeTestApp();
    const cluster = db.select().from(clusters).get()!;
    db.update(clusters)
      .set({ installer: { ...cluster.installer, kind: "cloud-image", ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@site"] } })
      .run();
    const res = await app.request(`/cloud-init/${mac}/user-data`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expectGolden("cloud-init/cloud-image.user-data", redactUserData(text));
    const doc = parse(text, { version: "1.1" }) as Record<string, any>;
    expect(doc.autoinstall).toBeUndefined();
    expect(doc.hostname).toBe("node-525400123456");
    expect(doc.ssh_authorized_keys).toEqual(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@site"]);
    expect(Object.keys(writeFiles(doc as { write_files: WriteFile[] }))).toContain("/etc/systemd/system/edgejoin-agent.service");
    expect(doc.runcmd).toContainEqual(["systemctl", "enable", "edgejoin-agent.service"]);
    expect(db.select().from(machines).get()!.progressTokenHash).toBeNull();
  });

  it("a cluster pointing at its own template → user-data rendered from it, values still escaped", async () => {
    const dir = testTempDir("templates");
    cpSync(testConfig().templatesDir, dir, { recursive: true });
    writeFileSync(
      join(dir, "cloud-init/site.user-data.mustache"),
      "#cloud-config\nhostname: {{hostname}}\ntimezone: Europe/Berlin\nwrite_files:\n  - path: /var/lib/edgejoin-agent/bootstrap-token\n    permissions: '0600'\n    content: {{bootstrapToken}}\n",
    );
    const { app, db } = makeTestApp({ env: { EDGEJOIN_TEMPLATES_DIR: dir } });
    const cluster = db.select().from(clusters).get()!;
    db.update(clusters)
      .set({ userDataTemplate: "cloud-init/site.user-data.mustache", installer: { ...cluster.installer, kind: "cloud-image" } })
      .run();
    const text = await (await app.request(`/cloud-init/${mac}/user-data`)).text();
    const doc = parse(text, { version: "1.1" }) as { timezone: string; write_files: WriteFile[] };
    expect(doc.timezone).toBe("Europe/Berlin");
    expect(doc.write_files[0]!.content).toMatch(/^eyJ/);
  });

  it("each user-data fetch → a new bootstrap token (new jti) and a new progress token", async () => {
    const { app } = makeTestApp();
    const a = await (await app.request(`/cloud-init/${mac}/user-data`)).text();
    const b = await (await app.request(`/cloud-init/${mac}/user-data`)).text();
    expect(a).not.toBe(b);
    expect(redactUserData(a)).toBe(redactUserData(b));
  });
});
