import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { auditEvents, machines, nodeEvents } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";

const mac = "52:54:00:12:34:56";

/** Render user-data as the installer would fetch it and pull out the two webhook URLs. */
async function installerUrls(app: ReturnType<typeof makeTestApp>["app"], forMac = mac) {
  const text = await (await app.request(`/cloud-init/${forMac}/user-data`)).text();
  const ai = (parse(text, { version: "1.1" }) as { autoinstall: { reporting: { edgejoin: { endpoint: string } }; "error-commands": string[][] } }).autoinstall;
  const events = new URL(ai.reporting.edgejoin.endpoint);
  const log = new URL(ai["error-commands"][0]![4]!);
  return { events: `${events.pathname}${events.search}`, log: `${log.pathname}${log.search}` };
}

/** What curtin's webhook handler posts (no application/json content type). */
const finishFail = {
  name: "subiquity/Install/install/configure_storage",
  description: "configuring storage",
  event_type: "finish",
  origin: "curtin",
  timestamp: 1764072000.5,
  level: "INFO",
  result: "FAIL",
};

describe("POST /install-progress/:mac (the installer's webhook)", () => {
  it("events and an error log with the machine's token → stored on that machine, source installer; a failure is audited", async () => {
    const { app, db } = makeTestApp();
    const urls = await installerUrls(app);
    const start = await app.request(urls.events, {
      method: "POST",
      body: JSON.stringify({ ...finishFail, event_type: "start", result: undefined }),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(start.status).toBe(202);
    const fail = await app.request(urls.events, { method: "POST", body: JSON.stringify(finishFail) });
    expect(fail.status).toBe(202);
    const log = await app.request(`${urls.log}&file=curtin-install.log`, {
      method: "POST",
      body: "curtin: disk not found\n",
      headers: { "content-type": "text/plain" },
    });
    expect(log.status).toBe(202);

    const m = db.select().from(machines).get()!;
    const events = db.select().from(nodeEvents).where(eq(nodeEvents.machineId, m.id)).all();
    expect(events.map((e) => [e.source, e.type])).toEqual([
      ["installer", "start"],
      ["installer", "finish"],
      ["installer", "log"],
    ]);
    expect(JSON.parse(events[1]!.detail!)).toMatchObject({ name: finishFail.name, result: "FAIL" });
    expect(events[2]!.detail).toBe("curtin-install.log\ncurtin: disk not found\n");
    const audits = db.select().from(auditEvents).where(eq(auditEvents.action, "machine.install_failed")).all();
    expect(audits).toHaveLength(2);
  });

  it("wrong token, another machine's token, no token, or an earlier install's token → 401, nothing stored; a later seed fetch keeps the token", async () => {
    const { app, db } = makeTestApp();
    const old = await installerUrls(app);
    // An earlier install: the admin's reinstall makes a new token.
    db.update(machines).set({ installGeneration: 1 }).run();
    const mine = await installerUrls(app);
    expect((await installerUrls(app)).events).toBe(mine.events);
    const other = await installerUrls(app, "52:54:00:00:00:02");
    const body = JSON.stringify(finishFail);
    const otherToken = new URL(other.events, "http://x").searchParams.get("token")!;
    for (const path of [
      old.events,
      `/install-progress/525400123456?token=${otherToken}`,
      "/install-progress/525400123456",
      `/install-progress/525400123456?token=${"A".repeat(43)}`,
      `/install-progress/525400999999?token=${otherToken}`,
    ]) {
      const res = await app.request(path, { method: "POST", body });
      expect(res.status, path).toBe(401);
      expect(await res.json()).toMatchObject({ error: "token_invalid" });
    }
    expect(db.select().from(nodeEvents).all()).toHaveLength(0);
    expect((await app.request(mine.events, { method: "POST", body })).status).toBe(202);
  });

  it("a bad MAC → 422; bad JSON → 400; an oversized body → 413; nothing stored", async () => {
    const { app, db } = makeTestApp();
    const urls = await installerUrls(app);
    const token = new URL(urls.events, "http://x").search;
    expect((await app.request(`/install-progress/not-a-mac${token}`, { method: "POST", body: "{}" })).status).toBe(422);
    expect((await app.request(urls.events, { method: "POST", body: "{not json" })).status).toBe(400);
    expect((await app.request(urls.events, { method: "POST", body: JSON.stringify({ name: "x" }) })).status).toBe(422);
    const huge = await app.request(urls.events, { method: "POST", body: JSON.stringify({ ...finishFail, description: "x".repeat(70_000) }) });
    expect(huge.status).toBe(413);
    expect(db.select().from(nodeEvents).all()).toHaveLength(0);
  });
});
