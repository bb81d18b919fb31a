/**
 * `edgejoin nodes show` prints a machine's whole timeline, following `next_cursor` page after page,
 * against a real server: a machine whose story is longer than the largest page.
 */
import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { join } from "node:path";
import { edgejoin, firstStart, tableRows } from "./helpers.js";

const mac = "52:54:00:71:00:01";
const lines = 1_100;

describe("edgejoin nodes show against a running server", () => {
  it("a timeline of more than 1,000 lines → all of them, oldest first, in the table and in --json", async () => {
    const { server, settings, env } = await firstStart();
    expect((await fetch(`${server.url}/boot.ipxe?mac=${mac}&serial=LONG-1`)).status).toBe(200);
    const listed = JSON.parse((await edgejoin(["nodes", "ls", "--json"], env)).stdout) as { nodes: { id: number; mac: string }[] };
    const id = listed.nodes.find((n) => n.mac === mac)!.id;
    // A chatty installer, written straight into the server's database (WAL: the server keeps serving).
    const db = new Database(join(settings.EDGEJOIN_DATA_DIR!, "edgejoin.db"));
    try {
      db.pragma("busy_timeout = 5000");
      const insert = db.prepare("insert into node_events (machine_id, at, source, type, detail) values (?, ?, 'installer', 'subiquity', ?)");
      const at = Date.now() + 60_000;
      db.transaction(() => {
        for (let i = 0; i < lines; i++) insert.run(id, at + i, `line ${i}`);
      })();
    } finally {
      db.close();
    }

    const show = await edgejoin(["nodes", "show", mac], env);
    expect(show.code, show.stderr).toBe(0);
    const table = show.stdout.slice(show.stdout.indexOf("timeline (oldest first):"));
    const rows = tableRows(table.split("\n").slice(1).join("\n")).slice(1);
    const installer = rows.filter((r) => r[1] === "installer").map((r) => r[2]);
    expect(installer).toEqual(Array.from({ length: lines }, (_, i) => `subiquity: line ${i}`));
    // The first boot is older than every installer line, so it leads the table.
    expect(rows[0]![1]).toBe("boot");
    expect(show.stdout).not.toContain("stopped after");

    const json = await edgejoin(["nodes", "show", String(id), "--json"], env);
    const timeline = (JSON.parse(json.stdout) as { timeline: { kind: string }[] }).timeline;
    expect(timeline.filter((e) => e.kind === "installer")).toHaveLength(lines);
    expect(timeline.length).toBe(rows.length);
  }, 90_000);
});
