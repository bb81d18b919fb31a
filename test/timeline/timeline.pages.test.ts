/**
 * GET /api/v1/nodes/:id/timeline pages like every list (`limit`, `cursor`, `next_cursor`): the
 * pages, read one after another, tell the same story as one big page, oldest first, each line
 * once, however the page size cuts it; a collapsed run of 202 polls stays one line.
 */
import { describe, expect, it } from "vitest";
import { nodeEvents, syslogMessages } from "../../db/schema.js";
import { flushDeferred } from "../../server/store/deferred.js";
import { recordTftpTransfer } from "../../server/store/timeline.js";
import { maxSyslogItems } from "../../server/store/timeline-read.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, bootQuery, discoverAndEnroll, mac } from "../enrollment/fixtures.js";

type T = ReturnType<typeof makeTestApp>;
type Entry = { at: string; kind: string; detail: string; count?: number; last_at?: string };
type Page = { node_id: number; timeline: Entry[]; next_cursor: string | null };

const machineIp = "10.77.0.50";
const from = (ip: string) => ({ incoming: { socket: { remoteAddress: ip, remotePort: 40000, remoteFamily: "IPv4", encrypted: true } } });

async function page(t: T, id: number, query: string): Promise<Page> {
  flushDeferred(t.db);
  const res = await t.app.request(`/api/v1/nodes/${id}/timeline?${query}`, { headers: admin });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Page;
}

/** Every page of `limit` lines, following next_cursor (bounded); each page checked for its size. */
async function walk(t: T, id: number, limit: number): Promise<{ lines: Entry[]; pages: number }> {
  const lines: Entry[] = [];
  let cursor: string | null = null;
  for (let pages = 1; pages <= 500; pages++) {
    const p: Page = await page(t, id, `limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    expect(p.timeline.length).toBeLessThanOrEqual(limit);
    lines.push(...p.timeline);
    if (p.next_cursor === null) return { lines, pages };
    expect(p.timeline).toHaveLength(limit);
    cursor = p.next_cursor;
  }
  throw new Error("more than 500 pages");
}

/**
 * A machine's install with every source in it, several of them in the same millisecond (the
 * clock stands still between some steps): TFTP by address, boot, seed, enroll, 202 polls
 * collapsed, approval, 200, agent events, syslog lines.
 */
async function installStory(t: T): Promise<number> {
  recordTftpTransfer(t.db, { file: "snponly.efi", address: machineIp, result: "done", bytes: 174_000, at: t.clock() });
  expect((await t.app.request(`/boot.ipxe?${bootQuery}`, {}, from(machineIp))).status).toBe(200);
  expect((await t.app.request(`/cloud-init/${mac}/meta-data`, {}, from(machineIp))).status).toBe(200);
  t.clock.advance(1000);
  const { node_id, credential } = await discoverAndEnroll(t);
  const node = { authorization: `Bearer ${credential}` };
  for (let i = 0; i < 5; i++) {
    t.clock.advance(1000);
    expect((await t.app.request("/api/v1/node/config", { headers: node }, from(machineIp))).status).toBe(202);
  }
  expect((await t.app.request(`/api/v1/nodes/${node_id}/approve`, { method: "POST", headers: admin })).status).toBe(200);
  expect((await t.app.request("/api/v1/node/config", { headers: node }, from(machineIp))).status).toBe(200);
  for (const type of ["installing", "k3s-started"]) {
    const res = await t.app.request(
      "/api/v1/node/events",
      { method: "POST", headers: { ...node, "content-type": "application/json" }, body: JSON.stringify({ type }) },
      from(machineIp),
    );
    expect(res.status).toBe(202);
  }
  for (let i = 0; i < 3; i++) {
    t.db
      .insert(syslogMessages)
      .values({ machineId: node_id, receivedAt: t.clock(), sourceIp: machineIp, facility: 1, severity: 6, app: "cloud-init", message: `step ${i}` })
      .run();
  }
  return node_id;
}

describe("timeline pages", () => {
  it("every page size from 1 up tells the one-page story: oldest first, each line once, the 202 run one line with its count", async () => {
    const t = makeTestApp();
    const id = await installStory(t);
    const whole = await page(t, id, "limit=1000");
    expect(whole.next_cursor).toBeNull();
    const kinds = new Set(whole.timeline.map((e) => e.kind));
    for (const kind of ["tftp", "boot", "seed", "enroll", "config", "approved", "event", "syslog"]) expect(kinds, kind).toContain(kind);
    expect(whole.timeline.map((e) => e.at)).toEqual([...whole.timeline.map((e) => e.at)].sort());
    // Lines sharing a millisecond: page cuts fall between them too.
    expect(new Set(whole.timeline.map((e) => e.at)).size).toBeLessThan(whole.timeline.length);
    const n = whole.timeline.length;
    expect(n).toBeGreaterThan(10);

    for (let limit = 1; limit <= n + 1; limit++) {
      const { lines, pages } = await walk(t, id, limit);
      expect(lines, `limit=${limit}`).toEqual(whole.timeline);
      // A full last page says so: no empty page after it.
      expect(pages).toBe(Math.ceil(n / limit));
      const polls = lines.filter((e) => e.kind === "config" && e.detail.startsWith("202"));
      expect(polls, `limit=${limit}`).toEqual([expect.objectContaining({ count: 5 })]);
    }
    // Without a limit: the default page of 100 holds this whole story.
    expect(await page(t, id, "")).toEqual(whole);
  });

  it("a machine with more than 1,000 lines → two pages of the largest size, nothing left out (the oldest line included)", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    const start = t.clock();
    t.db
      .insert(nodeEvents)
      .values(Array.from({ length: 1_200 }, (_, i) => ({ machineId: node_id, at: start + 1 + i, source: "agent", type: "installing", detail: `line ${i}` })))
      .run();
    const first = await page(t, node_id, "limit=1000");
    expect(first.timeline).toHaveLength(1000);
    expect(first.timeline[0]!.kind).toBe("boot");
    expect(first.next_cursor).not.toBeNull();
    const second = await page(t, node_id, `limit=1000&cursor=${first.next_cursor}`);
    expect(second.next_cursor).toBeNull();
    const all = [...first.timeline, ...second.timeline];
    const events = all.filter((e) => e.kind === "event").map((e) => e.detail);
    expect(events).toEqual(Array.from({ length: 1_200 }, (_, i) => `installing: line ${i}`));
    expect(all.at(-1)!.detail).toBe("installing: line 1199");
  });

  it("lines written while an admin pages → they come at the end, nothing read twice", async () => {
    const t = makeTestApp();
    const id = await installStory(t);
    const p1 = await page(t, id, "limit=4");
    t.clock.advance(1000);
    t.db.insert(nodeEvents).values({ machineId: id, at: t.clock(), source: "agent", type: "ready", detail: "late" }).run();
    const rest: Entry[] = [];
    let cursor = p1.next_cursor;
    for (let i = 0; i < 100 && cursor; i++) {
      const p = await page(t, id, `limit=4&cursor=${cursor}`);
      rest.push(...p.timeline);
      cursor = p.next_cursor;
    }
    const lines = [...p1.timeline, ...rest];
    expect(lines).toEqual((await page(t, id, "limit=1000")).timeline);
    expect(lines.at(-1)).toMatchObject({ kind: "event", detail: "ready: late" });
  });

  it("more syslog than a timeline shows → its newest lines and one pointer to the rest, on whichever page", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    const at = t.clock() + 1;
    t.db
      .insert(syslogMessages)
      .values(
        Array.from({ length: maxSyslogItems + 20 }, (_, i) => ({
          machineId: node_id,
          receivedAt: at + i,
          sourceIp: machineIp,
          facility: 1,
          severity: 6,
          message: `m${i}`,
        })),
      )
      .run();
    const whole = (await page(t, node_id, "limit=1000")).timeline;
    const syslog = whole.filter((e) => e.kind === "syslog");
    expect(syslog).toHaveLength(maxSyslogItems + 1);
    expect(syslog[0]!.detail).toBe(`earlier lines: GET /api/v1/nodes/${node_id}/syslog`);
    expect(syslog[1]!.detail).toBe("m20");
    expect(syslog.at(-1)!.detail).toBe(`m${maxSyslogItems + 19}`);
    for (const limit of [1, 7, 50]) expect((await walk(t, node_id, limit)).lines).toEqual(whole);
  });

  it("bad limit or cursor → 400/422 with a stable code, never a 500", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    // A cursor of another list (GET /api/v1/nodes's form), garbage, a forged lane.
    const forged = Buffer.from("t1:1.9.1").toString("base64url");
    const nodesCursor = Buffer.from("v1:5").toString("base64url");
    for (const q of ["limit=0", "limit=1001", "limit=x", "cursor=%%%", `cursor=${nodesCursor}`, `cursor=${forged}`, "cursor=", "state=joined"]) {
      const res = await t.app.request(`/api/v1/nodes/${node_id}/timeline?${q}`, { headers: admin });
      expect([400, 422], `${q}: ${res.status}`).toContain(res.status);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error, q).toBe("validation_failed");
      expect(body.message.length, q).toBeGreaterThan(0);
    }
  });
});
