/** GET /api/v1/nodes/:id/timeline: one machine's story, oldest first, bounded however much it polls. */
import { describe, expect, it } from "vitest";
import { eq, isNull } from "drizzle-orm";
import { nodeEvents, timelineEntries } from "../../db/schema.js";
import { maxAddressEntries, maxEntriesPerAddress, maxEntriesPerMachine, noteActivity, recordTftpTransfer } from "../../server/store/timeline.js";
import { flushDeferred } from "../../server/store/deferred.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, bootQuery, discoverAndEnroll, enroll, mac, tokenFor } from "../enrollment/fixtures.js";

type T = ReturnType<typeof makeTestApp>;
type Entry = { at: string; kind: string; detail: string; count?: number; last_at?: string };

/** A request from 10.77.0.50 "over TLS", as the node's own requests arrive. */
const from = (ip: string) => ({ incoming: { socket: { remoteAddress: ip, remotePort: 40000, remoteFamily: "IPv4", encrypted: true } } });
const machineIp = "10.77.0.50";

async function timeline(t: T, id: number): Promise<Entry[]> {
  const res = await t.app.request(`/api/v1/nodes/${id}/timeline`, { headers: admin });
  expect(res.status).toBe(200);
  return ((await res.json()) as { timeline: Entry[] }).timeline;
}

function config(t: T, credential: string) {
  return t.app.request("/api/v1/node/config", { headers: { authorization: `Bearer ${credential}` } }, from(machineIp));
}

describe("a machine's timeline", () => {
  it("TFTP, boot script, seed, enroll, 202 polls as one counted line, approval by token name, 200, agent events: oldest first", async () => {
    const t = makeTestApp();
    recordTftpTransfer(t.db, { file: "snponly.efi", address: machineIp, result: "done", bytes: 174_000, at: t.clock() });
    recordTftpTransfer(t.db, { file: "snponly.efi", address: "10.77.0.99", result: "done", bytes: 174_000, at: t.clock() });
    t.clock.advance(1000);
    expect((await t.app.request(`/boot.ipxe?${bootQuery}`, {}, from(machineIp))).status).toBe(200);
    t.clock.advance(1000);
    expect((await t.app.request(`/cloud-init/${mac}/meta-data`, {}, from(machineIp))).status).toBe(200);
    t.clock.advance(1000);
    const { node_id, credential } = await discoverAndEnroll(t);
    for (let i = 0; i < 3; i++) {
      t.clock.advance(1000);
      expect((await config(t, credential)).status).toBe(202);
    }
    t.clock.advance(1000);
    expect((await t.app.request(`/api/v1/nodes/${node_id}/approve`, { method: "POST", headers: admin })).status).toBe(200);
    t.clock.advance(1000);
    const released = await config(t, credential);
    expect(released.status).toBe(200);
    t.clock.advance(1000);
    const ev = await t.app.request(
      "/api/v1/node/events",
      { method: "POST", headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" }, body: JSON.stringify({ type: "installing" }) },
      from(machineIp),
    );
    expect(ev.status).toBe(202);

    const story = await timeline(t, node_id);
    const kinds = story.map((e) => e.kind);
    // Oldest first, every step where it happened.
    expect(story.map((e) => e.at)).toEqual([...story.map((e) => e.at)].sort());
    expect(kinds.indexOf("tftp")).toBeLessThan(kinds.indexOf("boot"));
    expect(kinds.indexOf("boot")).toBeLessThan(kinds.indexOf("seed"));
    expect(kinds.indexOf("seed")).toBeLessThan(kinds.indexOf("enroll"));
    expect(kinds.indexOf("enroll")).toBeLessThan(kinds.indexOf("approved"));
    expect(kinds.lastIndexOf("config")).toBeLessThan(kinds.indexOf("event"));

    const tftp = story.filter((e) => e.kind === "tftp");
    expect(tftp).toEqual([{ at: "2026-11-25T12:00:00.000Z", kind: "tftp", detail: `snponly.efi sent (174000 bytes) (from ${machineIp})` }]);
    expect(story.find((e) => e.kind === "boot" && e.detail.startsWith("/boot.ipxe"))?.detail).toBe(`/boot.ipxe: installing ${mac} for cluster default`);
    expect(story.find((e) => e.kind === "seed")).toMatchObject({ detail: "meta-data 200" });
    expect(story.find((e) => e.kind === "enroll")?.detail).toContain("machine.enrolled");
    const polls = story.filter((e) => e.kind === "config");
    expect(polls).toEqual([
      { at: "2026-11-25T12:00:04.000Z", kind: "config", detail: "202 wait: pending_approval", count: 3, last_at: "2026-11-25T12:00:06.000Z" },
      { at: "2026-11-25T12:00:08.000Z", kind: "config", detail: "200 config released: role init" },
    ]);
    expect(story.find((e) => e.kind === "approved")?.detail).toContain("by admin:env");
    expect(story.find((e) => e.kind === "event")).toMatchObject({ detail: "installing" });
    // A config 200 carries k3s secrets; the timeline keeps only the role.
    expect(JSON.stringify(t.db.select().from(timelineEntries).all())).not.toMatch(/token|K10/);
  });

  it("a second enroll while enrolled → a conflict line and a refused enroll, after the first enroll", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    t.clock.advance(1000);
    const { token } = await tokenFor(t);
    expect((await enroll(t, token)).status).toBe(409);
    const story = await timeline(t, node_id);
    const conflict = story.find((e) => e.kind === "conflict");
    expect(conflict?.detail).toContain("enroll.conflict");
    expect(conflict?.detail).toContain("code=already_enrolled");
    expect(story.findIndex((e) => e.kind === "enroll")).toBeLessThan(story.indexOf(conflict!));
  });

  it("unknown machine → 404; no admin token → 401; a malformed reference → 422", async () => {
    const t = makeTestApp();
    expect((await t.app.request("/api/v1/nodes/99/timeline", { headers: admin })).status).toBe(404);
    expect((await t.app.request("/api/v1/nodes/1/timeline")).status).toBe(401);
    // `abc` could be a serial (a machine is named by id, MAC or serial): none has it.
    expect((await t.app.request("/api/v1/nodes/abc/timeline", { headers: admin })).status).toBe(404);
    expect((await t.app.request("/api/v1/nodes/a%20b/timeline", { headers: admin })).status).toBe(422);
  });

  it("installer webhook and agent events appear as installer and event lines", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    t.db
      .insert(nodeEvents)
      .values({ machineId: node_id, at: t.clock() + 5, source: "installer", type: "curthooks: FAIL", detail: "disk busy" })
      .run();
    const story = await timeline(t, node_id);
    expect(story.at(-1)).toMatchObject({ kind: "installer", detail: "curthooks: FAIL: disk busy" });
  });
});

describe("timeline storage stays bounded", () => {
  it("2,000 identical polls → one row with count 2000", () => {
    const t = makeTestApp();
    for (let i = 0; i < 2_000; i++) noteActivity(t.db, { machineId: 1, ip: "10.0.0.1", kind: "config", detail: "202 wait: pending_approval", at: i });
    flushDeferred(t.db);
    expect(t.db.select().from(timelineEntries).all()).toMatchObject([{ count: 2_000, firstAt: 0, lastAt: 1_999 }]);
  });

  it("a line nobody reads → written by the deferred flush's own timer within 50 ms, none lost or doubled", async () => {
    const t = makeTestApp();
    noteActivity(t.db, { machineId: 1, ip: null, kind: "seed", detail: "user-data 200", at: 1 });
    expect(t.db.select().from(timelineEntries).all()).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 150));
    expect(t.db.select().from(timelineEntries).all()).toMatchObject([{ kind: "seed", detail: "user-data 200", count: 1 }]);
  });

  it("alternating distinct details → at most the per-machine cap, newest kept", () => {
    const t = makeTestApp();
    for (let i = 0; i < maxEntriesPerMachine + 50; i++) noteActivity(t.db, { machineId: 1, ip: null, kind: "seed", detail: `file-${i}`, at: i });
    flushDeferred(t.db);
    const rows = t.db.select().from(timelineEntries).where(eq(timelineEntries.machineId, 1)).all();
    expect(rows).toHaveLength(maxEntriesPerMachine);
    expect(rows.at(-1)!.detail).toBe(`file-${maxEntriesPerMachine + 49}`);
    expect(rows[0]!.detail).toBe("file-50");
  });

  it("TFTP from many addresses → per-address and total caps hold; long or control-character details are cut and cleaned", () => {
    const t = makeTestApp();
    for (let i = 0; i < maxEntriesPerAddress + 10; i++) recordTftpTransfer(t.db, { file: `f${i}`, address: "10.0.0.7", result: "not_found", bytes: 0, at: i });
    flushDeferred(t.db);
    expect(t.db.select().from(timelineEntries).where(eq(timelineEntries.sourceIp, "10.0.0.7")).all()).toHaveLength(maxEntriesPerAddress);
    recordTftpTransfer(t.db, { file: `evil\n${"x".repeat(1000)}`, address: "10.0.0.8", result: "not_found", bytes: 0, at: 1 });
    flushDeferred(t.db);
    const evil = t.db.select().from(timelineEntries).where(eq(timelineEntries.sourceIp, "10.0.0.8")).get()!;
    expect(evil.detail).not.toContain("\n");
    expect(evil.detail.length).toBeLessThanOrEqual(300);
    expect(maxAddressEntries).toBeGreaterThan(maxEntriesPerAddress);
    expect(t.db.select().from(timelineEntries).where(isNull(timelineEntries.machineId)).all().length).toBeLessThanOrEqual(maxAddressEntries);
  });
});
