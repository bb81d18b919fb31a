/**
 * Syslog lines filed under machines by their last known address, trimmed per machine and in
 * total, read back by `listSyslog` and `GET /api/v1/nodes/:id/syslog` (admin, paged, oldest first).
 */
import { describe, expect, it } from "vitest";
import type { Db } from "../../db/client.js";
import { recordSighting } from "../../server/store/machines.js";
import { fileSyslog, listSyslog } from "../../server/store/syslog.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";

const line = (message: string) => ({ facility: 1, severity: 6, timestamp: null, hostname: null, app: "ipxe", message });
const admin = { headers: { authorization: `Bearer ${testAdminToken}` } };

function machineAt(db: Db, mac: string, ip: string, now: number) {
  return recordSighting(db, { mac }, { ip, now, via: "boot" }).machine;
}

describe("syslog store", () => {
  it("a line from a machine's last known address → filed under it; from an unknown address → nothing stored", () => {
    const { db } = makeTestApp();
    const m = machineAt(db, "52:54:00:00:00:01", "10.77.0.51", 1000);
    expect(fileSyslog(db, { sourceIp: "10.77.0.51", line: line("dhcp ok"), now: 2000 })).toBe(m.id);
    expect(fileSyslog(db, { sourceIp: "10.77.0.99", line: line("who?"), now: 2000 })).toBeUndefined();
    const page = listSyslog(db, m.id, { limit: 10 });
    expect(page.items.map((r) => [r.message, r.sourceIp, r.receivedAt])).toEqual([["dhcp ok", "10.77.0.51", 2000]]);
    expect(page.nextAfter).toBeNull();
  });

  it("an address that moved to another machine → the line goes to the one seen there last", () => {
    const { db } = makeTestApp();
    machineAt(db, "52:54:00:00:00:01", "10.77.0.51", 1000);
    const newer = machineAt(db, "52:54:00:00:00:02", "10.77.0.51", 5000);
    expect(fileSyslog(db, { sourceIp: "10.77.0.51", line: line("x"), now: 6000 })).toBe(newer.id);
  });

  it("keeps the newest lines per machine and in total", () => {
    const { db } = makeTestApp();
    const a = machineAt(db, "52:54:00:00:00:01", "10.77.0.51", 1000);
    const b = machineAt(db, "52:54:00:00:00:02", "10.77.0.52", 1000);
    const caps = { perMachine: 5, total: 8 };
    for (let i = 0; i < 12; i++) fileSyslog(db, { sourceIp: "10.77.0.51", line: line(`a${i}`), now: 2000 + i }, caps);
    expect(listSyslog(db, a.id, { limit: 100 }).items.map((r) => r.message)).toEqual(["a7", "a8", "a9", "a10", "a11"]);
    for (let i = 0; i < 5; i++) fileSyslog(db, { sourceIp: "10.77.0.52", line: line(`b${i}`), now: 3000 + i }, caps);
    // 10 lines against a total of 8: the two oldest go, whoever they belong to.
    expect(listSyslog(db, a.id, { limit: 100 }).items.map((r) => r.message)).toEqual(["a9", "a10", "a11"]);
    expect(listSyslog(db, b.id, { limit: 100 }).items).toHaveLength(5);
  });

  it("pages oldest first with a cursor, and filters by time for the timeline", () => {
    const { db } = makeTestApp();
    const m = machineAt(db, "52:54:00:00:00:01", "10.77.0.51", 1000);
    for (let i = 0; i < 5; i++) fileSyslog(db, { sourceIp: "10.77.0.51", line: line(`l${i}`), now: 2000 + i * 10 });
    const first = listSyslog(db, m.id, { limit: 2 });
    expect(first.items.map((r) => r.message)).toEqual(["l0", "l1"]);
    const second = listSyslog(db, m.id, { limit: 2, after: first.nextAfter! });
    expect(second.items.map((r) => r.message)).toEqual(["l2", "l3"]);
    expect(listSyslog(db, m.id, { limit: 10, since: 2015, until: 2030 }).items.map((r) => r.message)).toEqual(["l2", "l3"]);
  });
});

describe("GET /api/v1/nodes/:id/syslog", () => {
  it("admin → lines with severity names and a next_cursor that pages on", async () => {
    const { app, db } = makeTestApp();
    const m = machineAt(db, "52:54:00:00:00:01", "10.77.0.51", 1000);
    for (let i = 0; i < 3; i++) fileSyslog(db, { sourceIp: "10.77.0.51", line: { ...line(`l${i}`), severity: 3 }, now: Date.UTC(2026, 0, 1) + i });
    const res = await app.request(`/api/v1/nodes/${m.id}/syslog?limit=2`, admin);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { lines: { message: string; severity: string; at: string; app: string }[]; next_cursor: string | null };
    expect(body.lines.map((l) => l.message)).toEqual(["l0", "l1"]);
    expect(body.lines[0]).toMatchObject({ severity: "err", app: "ipxe", at: "2026-01-01T00:00:00.000Z" });
    const next = (await (await app.request(`/api/v1/nodes/${m.id}/syslog?limit=2&cursor=${body.next_cursor}`, admin)).json()) as typeof body;
    expect(next.lines.map((l) => l.message)).toEqual(["l2"]);
    expect(next.next_cursor).toBeNull();
  });

  it("no token → 401; unknown machine → 404; a bad cursor or limit → 422", async () => {
    const { app } = makeTestApp();
    expect((await app.request("/api/v1/nodes/1/syslog")).status).toBe(401);
    expect((await app.request("/api/v1/nodes/999/syslog", admin)).status).toBe(404);
    expect((await app.request("/api/v1/nodes/1/syslog?cursor=zzz", admin)).status).toBe(422);
    expect((await app.request("/api/v1/nodes/1/syslog?limit=0", admin)).status).toBe(422);
  });
});

describe("iPXE's syslog setting", () => {
  it("EDGEJOIN_SYSLOG_PORT=514 → the chain script sets syslog to edgejoin's address; another port or off → not set (iPXE only sends to 514)", async () => {
    const on = makeTestApp({ env: { EDGEJOIN_SYSLOG_PORT: "514" }, transport: "http" });
    const script = await (await on.app.request("/boot.ipxe")).text();
    expect(script.split("\n").slice(0, 2)).toEqual(["#!ipxe", "set syslog 10.77.0.1"]);
    for (const env of [{ EDGEJOIN_SYSLOG_PORT: "5514" }, {}] as Record<string, string>[]) {
      const { app } = makeTestApp({ env, transport: "http" });
      expect(await (await app.request("/boot.ipxe")).text()).not.toContain("syslog");
    }
  });
});
