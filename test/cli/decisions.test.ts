/**
 * `edgejoin nodes reinstall` and `edgejoin clusters reform` for real: the binary against a real
 * server whose machines `edgejoin simulate` walked to `joined`. A one-server cluster loses its only
 * server to a reinstall, is refused a re-form while that server still held its seat, and re-forms
 * once it is gone.
 */
import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { join } from "node:path";
import { edgejoin, firstStart } from "./helpers.js";

type Node = { id: number; mac: string; serial: string; state: string; role: string | null };
type Explain = { cluster_id: number; role_if_approved_now: string | null; waiting_reason: string | null };

describe("edgejoin nodes reinstall and clusters reform against a running server", () => {
  it("reform refused while a server holds its seat; reinstall of unknown or retired machines refused; reinstall frees the seat; then reform → next machine is init", async () => {
    const { server, settings, env } = await firstStart();
    expect((await edgejoin(["clusters", "create", "edge-r", "--servers", "1", "--default"], env)).code).toBe(0);
    const sim = await edgejoin(["simulate", "--nodes", "2", "--fast", "--cluster", "edge-r", "--servers", "1", "--approve", "--timeout", "90"], env, 120_000);
    expect(sim.code, `${sim.stdout}\n${sim.stderr}`).toBe(0);
    const nodes = JSON.parse((await edgejoin(["nodes", "ls", "--json"], env)).stdout).nodes as Node[];
    const init = nodes.find((n) => n.role === "init")!;
    const agent = nodes.find((n) => n.role === "agent")!;
    expect(init.state).toBe("joined");
    expect(agent.state).toBe("joined");

    // The cluster's one server is alive: re-forming now would start a second cluster beside it.
    const early = await edgejoin(["clusters", "reform", "edge-r"], env);
    expect(early).toMatchObject({
      code: 1,
      stdout: "",
      stderr: `edgejoin: 409 invalid_state: cluster edge-r still has servers: machine ${init.id} (init, joined); retire or reinstall them before re-forming it\n`,
    });
    expect((await edgejoin(["clusters", "reform", "nope"], env)).stderr).toBe("edgejoin: no cluster named nope (edgejoin clusters ls lists them)\n");

    // Reinstall refusals, one line each: nobody by that MAC or id, a retired machine.
    expect(await edgejoin(["nodes", "reinstall", "52:54:00:ff:ff:fe"], env)).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "edgejoin: no machine with MAC 52:54:00:ff:ff:fe\n",
    });
    const byId = await edgejoin(["nodes", "reinstall", "999"], env);
    expect(byId.code).toBe(1);
    expect(byId.stderr).toMatch(/^edgejoin: 404 not_found: .+\n$/);
    expect((await edgejoin(["nodes", "retire", String(agent.id)], env)).code).toBe(0);
    const retired = await edgejoin(["nodes", "reinstall", agent.mac], env);
    expect(retired.code).toBe(1);
    expect(retired.stderr).toMatch(/^edgejoin: 409 invalid_state: .*retired.*\n$/);

    // A joined machine boots from its disk until an admin asks for its reinstall.
    const boot = async () => (await fetch(`${server.url}/boot.ipxe?mac=${init.mac}`)).text();
    expect(await boot()).not.toMatch(/^kernel /m);
    const reinstall = await edgejoin(["nodes", "reinstall", init.serial], env);
    expect(reinstall).toMatchObject({ code: 0, stderr: "", stdout: `machine ${init.id} (${init.mac}) will be reinstalled at its next netboot: now pending\n` });
    expect(await boot()).toMatch(/^kernel /m);
    const after = JSON.parse((await edgejoin(["nodes", "show", String(init.id), "--json"], env)).stdout).node as Node;
    // Its k3s ran, but no other server did: its etcd went with its disk, so the seat is freed.
    expect(after).toMatchObject({ state: "pending", role: null });
    const db = new Database(join(settings.EDGEJOIN_DATA_DIR!, "edgejoin.db"), { readonly: true });
    try {
      const row = db.prepare("select actor, detail from audit_events where action = 'machine.reinstall_requested'").get() as { actor: string; detail: string };
      expect(row.actor).toBe("admin:initial");
      expect(JSON.parse(row.detail)).toMatchObject({ from: "joined", role: "init", seat: "free" });
    } finally {
      db.close();
    }

    // The cluster formed once and has no server: nobody may run cluster-init until an admin re-forms it.
    // A rule would approve the next machine at once; what it then waits for is the re-form.
    expect((await edgejoin(["rules", "add", "next-nuc", "--cluster", "edge-r", "--serial-prefix", "NEXT"], env)).code).toBe(0);
    const explain = async () => JSON.parse((await edgejoin(["explain", "--serial", "NEXT-1", "--json"], env)).stdout) as Explain;
    expect(await explain()).toMatchObject({ role_if_approved_now: "server", waiting_reason: "waiting_for_reform" });
    const reform = await edgejoin(["clusters", "reform", "edge-r"], env);
    expect(reform).toMatchObject({ code: 0, stderr: "", stdout: "cluster edge-r will re-form: the next approved machine becomes its init server\n" });
    expect(await explain()).toMatchObject({ role_if_approved_now: "init", waiting_reason: null });
    const json = await edgejoin(["clusters", "reform", "edge-r", "--json"], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ name: "edge-r" });
  }, 180_000);
});
