/**
 * What the console's pages show, through app.request: a cluster's seats, health, rules and
 * pre-registrations; a machine's facts, timeline and the decisions open to it. Also the metrics
 * registry: one per app, with route patterns as labels.
 */
import { describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { recordSighting } from "../../server/store/machines.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";

type App = ReturnType<typeof makeTestApp>["app"];
const cookiesOf = (res: Response) => res.headers.getSetCookie().map((c) => c.split(";")[0]!);
const admin = { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" };

async function session(app: App): Promise<string> {
  const page = await app.request("/ui/login");
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const res = await app.request("/ui/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookiesOf(page).join("; ") },
    body: new URLSearchParams({ _csrf: csrf, token: testAdminToken }).toString(),
  });
  return cookiesOf(res).find((c) => c.startsWith("edgejoin_session="))!;
}

describe("console pages", () => {
  it("a cluster's page: health, free init seat, its rules and pre-registrations (not another cluster's)", async () => {
    const { app } = makeTestApp();
    const rule = await app.request("/api/v1/rules", {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name: "rack-7", cluster_id: 1, match: { cidr: "10.7.0.0/24", product: "NUC13" }, limit: 3 }),
    });
    expect(rule.status, await rule.clone().text()).toBeLessThan(300);
    const pre = await app.request("/api/v1/machines", {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ serial: "SN-PRE-1", cluster_id: 1, hostname: "edge-a" }),
    });
    expect(pre.status, await pre.clone().text()).toBeLessThan(300);
    const cookie = await session(app);
    const res = await app.request("/ui/clusters/1", { headers: { cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Cluster default");
    expect(html).toContain("b-forming");
    expect(html).toMatch(/init<\/span> free/);
    expect(html).toContain("rack-7: cidr=10.7.0.0/24, product=NUC13");
    expect(html).toContain("3 left");
    expect(html).toContain("serial SN-PRE-1 as edge-a");
    expect((await app.request("/ui/clusters/99", { headers: { cookie } })).status).toBe(404);
  });

  it("a machine's page: facts, state, its timeline, and only the decisions its state allows", async () => {
    const { app, db } = makeTestApp();
    const { machine } = recordSighting(db, { mac: "52:54:00:aa:00:01", serial: "SN-PAGE-1" }, { now: Date.UTC(2026, 10, 25, 12), ip: "10.0.0.9", via: "boot" });
    db.run(sql`update machines set state = 'pending' where id = ${machine.id}`);
    const cookie = await session(app);
    const html = await (await app.request(`/ui/machines/${machine.id}`, { headers: { cookie } })).text();
    expect(html).toContain("52:54:00:aa:00:01");
    expect(html).toContain("SN-PAGE-1");
    expect(html).toContain("machine.discovered");
    expect(html).toContain(`action="/ui/machines/${machine.id}/approve"`);
    expect(html).toContain(`action="/ui/machines/${machine.id}/reject"`);
    // A joined machine can be reinstalled from its page: it goes back to pending for a new install.
    db.run(sql`update machines set state = 'failed' where id = ${machine.id}`);
    const failed = await (await app.request(`/ui/machines/${machine.id}`, { headers: { cookie } })).text();
    expect(failed).toContain(`action="/ui/machines/${machine.id}/reinstall"`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(failed)![1]!;
    const reinstall = await app.request(`/ui/machines/${machine.id}/reinstall`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: new URLSearchParams({ _csrf: csrf, from: "machine" }).toString(),
    });
    expect(reinstall.status).toBe(303);
    expect(reinstall.headers.get("location")).toMatch(new RegExp(`^/ui/machines/${machine.id}\\?done=`));
    expect(db.get<{ state: string }>(sql`select state from machines where id = ${machine.id}`)!.state).toBe("pending");
    db.run(sql`update machines set state = 'retired' where id = ${machine.id}`);
    const retired = await (await app.request(`/ui/machines/${machine.id}`, { headers: { cookie } })).text();
    expect(retired).not.toContain(`action="/ui/machines/${machine.id}/retire"`);
    expect(retired).not.toContain(`action="/ui/machines/${machine.id}/reject"`);
  });

  it("a machine with a conflict: counted in the pending list, listed on its page, approved only with dismiss conflicts ticked", async () => {
    const { app, db } = makeTestApp();
    const { machine } = recordSighting(db, { mac: "52:54:00:aa:00:03" }, { now: 1, ip: "10.0.0.3", via: "boot" });
    const conflict = [{ at: Date.UTC(2026, 10, 25, 12), source_ip: "10.0.0.66", facts: { serial: "SN-OTHER" } }];
    db.run(sql`update machines set state = 'pending', conflicts = ${JSON.stringify(conflict)} where id = ${machine.id}`);
    const cookie = await session(app);
    const list = await (await app.request("/ui", { headers: { cookie } })).text();
    expect(list).toContain("1 conflicts");
    const page = await (await app.request(`/ui/machines/${machine.id}`, { headers: { cookie } })).text();
    expect(page).toContain("from 10.0.0.66");
    expect(page).toContain("SN-OTHER");
    expect(page).toContain('name="dismiss_conflicts"');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
    const approve = (extra: Record<string, string>) =>
      app.request(`/ui/machines/${machine.id}/approve`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body: new URLSearchParams({ _csrf: csrf, cluster_id: "1", ...extra }).toString(),
      });
    expect((await approve({})).status).toBe(409);
    expect((await approve({ dismiss_conflicts: "true" })).status).toBe(303);
    expect(db.get<{ state: string }>(sql`select state from machines where id = ${machine.id}`)!.state).toBe("approved");
  });

  it("Approve selected approves every ticked machine into the chosen cluster; one it may not approve is named", async () => {
    const { app, db } = makeTestApp();
    const ids = [1, 2, 3].map((i) => recordSighting(db, { mac: `52:54:00:bb:00:0${i}` }, { now: i, ip: `10.0.1.${i}`, via: "boot" }).machine.id);
    db.run(sql`update machines set state = 'pending' where id in (${ids[0]}, ${ids[1]})`);
    db.run(sql`update machines set state = 'joined' where id = ${ids[2]}`);
    const cookie = await session(app);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await app.request("/ui", { headers: { cookie } })).text())![1]!;
    const body = new URLSearchParams({ _csrf: csrf, cluster_id: "1" });
    for (const id of ids) body.append("ids", String(id));
    const res = await app.request("/ui/machines/approve", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
      body: body.toString(),
    });
    expect(res.status).toBe(303);
    expect(decodeURIComponent(res.headers.get("location")!)).toContain(`approved 2 of 3; refused ${ids[2]}:`);
    const states = db.all<{ state: string }>(sql`select state from machines order by id`).map((r) => r.state);
    expect(states).toEqual(["approved", "approved", "joined"]);
  });

  it("a bad hostname in the approve form → 422 page, machine unchanged; a good one → approved by admin:env", async () => {
    const { app, db } = makeTestApp();
    const { machine } = recordSighting(db, { mac: "52:54:00:aa:00:02" }, { now: 1, ip: "10.0.0.8", via: "boot" });
    db.run(sql`update machines set state = 'pending' where id = ${machine.id}`);
    const cookie = await session(app);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await app.request("/ui", { headers: { cookie } })).text())![1]!;
    const post = (hostname: string) =>
      app.request(`/ui/machines/${machine.id}/approve`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie },
        body: new URLSearchParams({ _csrf: csrf, cluster_id: "1", hostname }).toString(),
      });
    const bad = await post("Bad_Name\n");
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain("hostname must be an RFC 1123 label");
    expect(db.get<{ state: string }>(sql`select state from machines where id = ${machine.id}`)!.state).toBe("pending");
    expect((await post("edge-b")).status).toBe(303);
    const row = db.get<{ state: string; hostname: string; approved_by: string }>(
      sql`select state, hostname, approved_by from machines where id = ${machine.id}`,
    )!;
    expect(row).toEqual({ state: "approved", hostname: "edge-b", approved_by: "admin:env" });
  });
});

describe("the metrics registry", () => {
  it("is one per app: a request to one app is not counted by another; routes are labelled by pattern", async () => {
    const a = makeTestApp();
    const b = makeTestApp();
    await a.app.request("/api/v1/nodes/42", { headers: admin });
    await a.app.request("/no/such/route");
    const textA = await (await a.app.request("/metrics")).text();
    const textB = await (await b.app.request("/metrics")).text();
    expect(textA).toContain('edgejoin_http_requests_total{route="/api/v1/nodes/:id",status="404",method="GET"} 1');
    expect(textA).toContain('edgejoin_http_requests_total{route="(unmatched)",status="404",method="GET"} 1');
    expect(textA).not.toContain("/no/such/route");
    expect(textB).not.toContain("/api/v1/nodes/:id");
    expect(textA).toContain('edgejoin_cluster_servers_ready{cluster="default"} 0');
  });
});
