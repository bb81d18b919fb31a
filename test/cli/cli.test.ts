/**
 * The admin's CLI for real: `bin/edgejoin.js` against a real edgejoin process on loopback, with the
 * token its first start printed, machines walked through their life by `edgejoin simulate`.
 */
import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { freeTcpPort } from "../helpers/ports.js";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { edgejoin, firstStart, tableRows } from "./helpers.js";

describe("edgejoin admin CLI against a running server", () => {
  it("an admin's day: simulate machines, nodes ls/show (timeline), clusters ls/show (quorum), tokens create/ls/revoke, --json, one-line errors", async () => {
    const { server, settings, env } = await firstStart();

    const created = await edgejoin(["clusters", "create", "site-a", "--servers", "3"], env);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe("cluster site-a created (id 2, 3 servers)\n");

    const sim = await edgejoin(
      [
        "simulate",
        "--nodes",
        "4",
        "--fast",
        "--cluster",
        "site-a",
        "--servers",
        "3",
        "--tftp",
        `127.0.0.1:${settings.EDGEJOIN_TFTP_PORT}`,
        "--boot-file",
        "autoexec.ipxe",
        "--approve",
        "--timeout",
        "90",
      ],
      env,
      120_000,
    );
    expect(sim.code, `${sim.stdout}\n${sim.stderr}`).toBe(0);

    // nodes ls: an aligned table, one row per machine, filters by state and cluster.
    const ls = await edgejoin(["nodes", "ls", "--cluster", "site-a"], env);
    expect(ls.code, ls.stderr).toBe(0);
    const rows = tableRows(ls.stdout);
    expect(rows[0]!.slice(0, 7)).toEqual(["ID", "MAC", "SERIAL", "HOSTNAME", "STATE", "ROLE", "CLUSTER"]);
    expect(rows).toHaveLength(5);
    expect(rows.slice(1).every((r) => r[4] === "joined" && r[6] === "site-a")).toBe(true);
    expect(
      rows
        .slice(1)
        .map((r) => r[5])
        .sort(),
    ).toEqual(["agent", "init", "server", "server"]);
    // Columns line up: every row's STATE starts where the header's does.
    const lines = ls.stdout.trimEnd().split("\n");
    const stateAt = lines[0]!.indexOf("STATE");
    expect(lines.slice(1).every((l) => l.slice(stateAt).startsWith("joined"))).toBe(true);
    expect((await edgejoin(["nodes", "ls", "--state", "pending"], env)).stdout).toBe("no machines\n");

    const json = await edgejoin(["nodes", "ls", "--json"], env);
    const listed = JSON.parse(json.stdout) as { nodes: { id: number; mac: string; serial: string; role: string }[] };
    expect(listed.nodes).toHaveLength(4);
    const init = listed.nodes.find((n) => n.role === "init")!;

    // nodes show by MAC (any spelling) and by serial: the machine and its timeline, oldest first.
    const show = await edgejoin(["nodes", "show", init.mac.toUpperCase().replaceAll(":", "-")], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^id:\\s+${init.id}$`, "m"));
    expect(show.stdout).toMatch(/^approved by:\s+admin:initial$/m);
    const timeline = show.stdout.slice(show.stdout.indexOf("timeline (oldest first):"));
    const kinds = tableRows(timeline.split("\n").slice(1).join("\n"))
      .slice(1)
      .map((r) => r[1]);
    for (const kind of ["tftp", "boot", "seed", "enroll", "approved", "config", "event"]) expect(kinds, timeline).toContain(kind);
    expect(kinds.indexOf("boot")).toBeLessThan(kinds.indexOf("enroll"));
    expect(kinds.indexOf("enroll")).toBeLessThan(kinds.lastIndexOf("event"));
    expect(timeline).toMatch(/200 config released: role init/);
    // Approving twice is no error: the server says it already is.
    const again = await edgejoin(["nodes", "approve", init.mac], env);
    expect(again).toMatchObject({ code: 0, stdout: `machine ${init.id}: machine ${init.id} is already approved (joined)\n` });
    const bySerial = await edgejoin(["nodes", "show", init.serial, "--json"], env);
    expect(JSON.parse(bySerial.stdout).node.id).toBe(init.id);

    // clusters ls and show: the quorum with who holds which seat.
    const clusters = await edgejoin(["clusters", "ls"], env);
    expect(tableRows(clusters.stdout).map((r) => r[1])).toEqual(["NAME", "default", "site-a"]);
    const q = await edgejoin(["clusters", "show", "site-a"], env);
    expect(q.code, q.stderr).toBe(0);
    expect(q.stdout).toMatch(/^health:\s+ok$/m);
    expect(q.stdout).toMatch(/^servers:\s+3 ready of 3 desired/m);
    expect(q.stdout).toMatch(new RegExp(`^init\\s+${init.id}\\s+${init.mac}\\s`, "m"));
    expect(q.stdout.match(/^server\s+\d+\s/gm)).toHaveLength(2);
    expect(q.stdout).toMatch(/^agents:\s+1 \(1 joined\)$/m);

    // tokens: create (shown once), ls, the new one works and is audited by name, revoke, then refused.
    const made = await edgejoin(["tokens", "create", "alice"], env);
    expect(made.code, made.stderr).toBe(0);
    const alice = made.stdout.trim();
    expect(alice).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const tls = await edgejoin(["tokens", "ls"], env);
    expect(tableRows(tls.stdout).map((r) => [r[0], r[2]])).toEqual([
      ["NAME", "BY"],
      ["alice", "admin:initial"],
      ["initial", "system"],
    ]);
    expect(tls.stdout).not.toContain(alice);
    const asAlice = { ...env, EDGEJOIN_ADMIN_TOKEN: alice };
    const rejected = await edgejoin(["nodes", "reject", String(listed.nodes.find((n) => n.role === "agent")!.id)], asAlice);
    // Reject is refused for a joined machine (retire it): the server's error, in one line.
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toMatch(/^edgejoin: 409 invalid_state: .+\n$/);
    const retired = await edgejoin(["nodes", "retire", String(listed.nodes.find((n) => n.role === "agent")!.id), "--reason", "test"], asAlice);
    expect(retired.code, retired.stderr).toBe(0);
    expect(retired.stdout).toMatch(/ retired in cluster site-a: now retired\n/);
    // It ran k3s: the CLI says what to remove from the cluster.
    expect(retired.stdout).toMatch(/^remove node \S+ from k3s: it was a k3s agent/m);
    expect(retired.stdout).toMatch(/^ {2}kubectl delete node \S+$/m);
    expect((await edgejoin(["nodes", "ls", "--install-failed"], env)).stdout).toBe("no machines\n");
    const db = new Database(join(settings.EDGEJOIN_DATA_DIR!, "edgejoin.db"), { readonly: true });
    try {
      const row = db.prepare("select actor from audit_events where action = 'machine.retired'").get() as { actor: string };
      expect(row.actor).toBe("admin:alice");
    } finally {
      db.close();
    }
    expect((await edgejoin(["tokens", "revoke", "alice"], env)).stdout).toBe("token alice revoked\n");
    const refused = await edgejoin(["nodes", "ls"], asAlice);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(/^edgejoin: 401 unauthorized: .+\n$/);

    // Every listing takes --json.
    for (const [noun, key] of [
      ["clusters", "clusters"],
      ["tokens", "tokens"],
      ["machines", "machines"],
      ["rules", "rules"],
    ] as const) {
      const r = await edgejoin([noun, "ls", "--json"], env);
      expect(r.code, `${noun}: ${r.stderr}`).toBe(0);
      expect(Array.isArray(JSON.parse(r.stdout)[key])).toBe(true);
    }

    // One line naming the problem, non-zero exit.
    const nobody = await edgejoin(["nodes", "show", "52:54:00:ff:ff:ff"], env);
    expect(nobody).toMatchObject({ code: 1, stdout: "", stderr: "edgejoin: no machine with MAC 52:54:00:ff:ff:ff\n" });
    const noToken = await edgejoin(["nodes", "ls"], { EDGEJOIN_URL: server.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^edgejoin: set EDGEJOIN_ADMIN_TOKEN .+\n$/);
    const closed = await freeTcpPort();
    const down = await edgejoin(["clusters", "ls"], { ...env, EDGEJOIN_URL: `http://127.0.0.1:${closed}` });
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(`edgejoin: cannot reach http://127.0.0.1:${closed} (ECONNREFUSED); set EDGEJOIN_URL to the server's address\n`);
    const noCluster = await edgejoin(["clusters", "show", "nope"], env);
    expect(noCluster).toMatchObject({ code: 1, stderr: "edgejoin: no cluster named nope (edgejoin clusters ls lists them)\n" });
    const invalid = await edgejoin(["clusters", "create", "Bad_Name"], env);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^edgejoin: 422 validation_failed: name: .+\n$/);
  }, 180_000);

  it("rules add/ls/rm, machines add/ls/rm, explain: through the real API", async () => {
    const { env } = await firstStart();
    const rule = await edgejoin(
      ["rules", "add", "nuc-site-x", "--cluster", "default", "--cidr", "10.20.0.0/24", "--manufacturer", "Intel(R) Client Systems", "--limit", "3"],
      env,
    );
    expect(rule.code, rule.stderr).toBe(0);
    expect(rule.stdout).toMatch(/^rule nuc-site-x \(id \d+\) approves into default, at most 3 more\n$/);
    const rules = await edgejoin(["rules", "ls"], env);
    const row = tableRows(rules.stdout)[1]!;
    expect(row.slice(1, 3)).toEqual(["nuc-site-x", "default"]);
    expect(rules.stdout).toContain("cidr=10.20.0.0/24");

    const pre = await edgejoin(["machines", "add", "--serial", "G6NUC0042", "--cluster", "default", "--hostname", "edge-42"], env);
    expect(pre.code, pre.stderr).toBe(0);
    const preId = /as machine:(\d+),/.exec(pre.stdout)?.[1];
    expect(preId, pre.stdout).toBeDefined();
    expect(tableRows((await edgejoin(["machines", "ls"], env)).stdout)[1]!.slice(0, 5)).toEqual([preId, "-", "G6NUC0042", "-", "default"]);
    const twoIds = await edgejoin(["machines", "add", "--serial", "A", "--mac", "52:54:00:00:00:01", "--cluster", "default"], env);
    expect(twoIds).toMatchObject({ code: 2, stderr: "edgejoin: give exactly one of --mac, --serial or --uuid\n" });

    const ex = await edgejoin(["explain", "--serial", "G6NUC0042", "--ip", "10.20.0.7", "--manufacturer", "Intel(R) Client Systems"], env);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toMatch(new RegExp(`^approved by:\\s+machine:${preId}$`, "m"));
    expect(ex.stdout).toMatch(/^→\s+pre-registration\s+machine:\d+\s/m);
    expect(ex.stdout).toMatch(/^\+\s+rule\s+nuc-site-x\s/m);
    const exJson = JSON.parse((await edgejoin(["explain", "--mac", "52:54:00:aa:bb:cc", "--json"], env)).stdout);
    expect(exJson).toMatchObject({ approval: null, waiting_reason: "pending_approval" });

    // A cluster's SSH keys: every install of its machines gets them (installer.ssh_authorized_keys).
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICrAEfBsHFmkK8e7+Oh47eqGk9pJ2LAA9Tw+z5QbnIc6 ops@site.example";
    const withKey = await edgejoin(["clusters", "create", "site-b", "--ssh-key", key, "--json"], env);
    expect(withKey.code, withKey.stderr).toBe(0);
    expect(JSON.parse(withKey.stdout).installer).toMatchObject({ kind: "ubuntu-autoinstall", kernel_url: "ubuntu/casper/vmlinuz", ssh_authorized_keys: [key] });

    expect((await edgejoin(["machines", "rm", preId!], env)).stdout).toBe(`pre-registration ${preId} removed\n`);
    expect((await edgejoin(["rules", "rm", "nuc-site-x"], env)).stdout).toBe("rule nuc-site-x deleted\n");
    expect((await edgejoin(["rules", "ls"], env)).stdout).toBe("no rules\n");
  }, 90_000);

  it("backup FILE while a storm of writes runs → a consistent copy (integrity_check ok), mode 0600", async () => {
    const { server, env, root } = await firstStart();
    let stop = false;
    let writes = 0;
    // Boot requests from 40 machines, round and round: each one writes a sighting and a timeline line.
    const storm = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop && i < 5000; i++) {
        const mac = `52:54:00:00:${String(w).padStart(2, "0")}:${String(i % 5).padStart(2, "0")}`;
        const res = await fetch(`${server.url}/boot.ipxe?mac=${mac}&serial=S${w}${i % 5}`);
        await res.arrayBuffer();
        if (res.ok) writes++;
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const file = join(root, "backup.db");
    const run = await edgejoin(["backup", file], env);
    stop = true;
    await Promise.all(storm);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^wrote .+backup\.db \(\d+ bytes\)\n$/);
    expect(writes).toBeGreaterThan(50);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(existsSync(`${file}.partial`)).toBe(false);
    const copy = new Database(file, { readonly: true });
    try {
      expect(copy.pragma("integrity_check", { simple: true })).toBe("ok");
      const machines = (copy.prepare("select count(*) as n from machines").get() as { n: number }).n;
      expect(machines).toBeGreaterThan(0);
      expect((copy.prepare("select count(*) as n from admin_tokens where name = 'initial'").get() as { n: number }).n).toBe(1);
    } finally {
      copy.close();
    }
  }, 90_000);
});

describe("the first-start admin token", () => {
  it("a first start that fails to bind prints no token and uses none up; the next start prints it; tokens reset-initial replaces a lost one", async () => {
    const root = testTempDir("cli-first");
    const settings: Record<string, string> = { ...(await loopbackSettings(root)), EDGEJOIN_IPXE_DIR: join(root, "no-ipxe") };
    // Hold the HTTP port so the first start cannot bind it.
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(Number(settings.EDGEJOIN_HTTP_PORT), "127.0.0.1", r));
    const failed = spawnServer(settings, "cli");
    expect(await failed.exited).toBe(1);
    expect(failed.stderr()).toMatch(/cannot bind HTTP/);
    expect(failed.stderr()).not.toMatch(/admin token/);
    await new Promise<void>((r) => blocker.close(() => r()));

    const ok = spawnServer(settings, "cli");
    await waitHealthy(ok);
    for (let i = 0; i < 100 && !/^ {4}\S{43}$/m.test(ok.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    const token = /^ {4}([A-Za-z0-9_-]{43})$/m.exec(ok.stderr())?.[1];
    expect(token, ok.stderr()).toBeDefined();
    const env = { EDGEJOIN_URL: ok.url, EDGEJOIN_ADMIN_TOKEN: token! };
    expect((await edgejoin(["tokens", "ls"], env)).code).toBe(0);

    // Lost it: reset on the server's host, while it runs.
    const wrongDir = await edgejoin(["tokens", "reset-initial", "--data-dir", join(root, "nowhere")], {});
    expect(wrongDir.code).toBe(2);
    expect(wrongDir.stderr).toMatch(/^edgejoin: no edgejoin database at .+: run this where the data folder is/);
    expect(existsSync(join(root, "nowhere"))).toBe(false);
    const reset = await edgejoin(["tokens", "reset-initial"], { EDGEJOIN_DATA_DIR: settings.EDGEJOIN_DATA_DIR! });
    expect(reset.code, reset.stderr).toBe(0);
    const fresh = reset.stdout.trim();
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fresh).not.toBe(token);
    const old = await edgejoin(["tokens", "ls"], env);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/^edgejoin: 401 unauthorized/);
    const renewed = await edgejoin(["tokens", "ls", "--json"], { ...env, EDGEJOIN_ADMIN_TOKEN: fresh });
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(JSON.parse(renewed.stdout).tokens).toMatchObject([{ name: "initial", created_by: "local" }]);
  }, 60_000);
});
