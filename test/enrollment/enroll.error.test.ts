import { describe, expect, it } from "vitest";
import { auditEvents, machines, usedTokens } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, bootQuery, discoverAndEnroll, enroll, facts, mac, postJson, tokenFor, type TestApp } from "./fixtures.js";

async function expectError(res: Response, status: number, error: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = (await res.json()) as { error: string; message: string; requestId: string };
  expect(body).toMatchObject({ error });
  expect(body.message).toMatch(/\w/);
  return body;
}

/** Only the discovery from boot.ipxe: no enroll, no spent token, no refusal record. */
function expectNothingStored(t: TestApp) {
  expect(
    t.db
      .select()
      .from(machines)
      .all()
      .map((m) => m.state),
  ).toEqual(["discovered"]);
  expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
  expect(
    t.db
      .select()
      .from(auditEvents)
      .all()
      .map((a) => a.action),
  ).toEqual(["cluster.created", "machine.discovered"]);
}

async function booted() {
  const t = makeTestApp();
  await t.app.request(`/boot.ipxe?${bootQuery}`);
  const { token } = await tokenFor(t);
  return { t, token };
}

const raw = (t: TestApp, body: string, contentType = "application/json") =>
  t.app.request("/api/v1/enroll", { method: "POST", headers: { "content-type": contentType }, body });

describe("POST /api/v1/enroll with bad input", () => {
  it("malformed JSON → 400 invalid_json, nothing stored", async () => {
    const { t } = await booted();
    await expectError(await raw(t, '{"token": "abc", "mac": '), 400, "invalid_json");
    expectNothingStored(t);
  });

  it("not JSON content type → 400 invalid_json", async () => {
    const { t, token } = await booted();
    await expectError(await raw(t, `token=${token}&mac=${mac}`, "application/x-www-form-urlencoded"), 400, "invalid_json");
    expectNothingStored(t);
  });

  it("body over 64 KiB → 413 body_too_large, nothing stored", async () => {
    const { t, token } = await booted();
    const res = await enroll(t, token, { facts: { ...facts, padding: "x".repeat(70 * 1024) } });
    await expectError(res, 413, "body_too_large");
    expectNothingStored(t);
  });

  it("body over 64 KiB without content-length (chunked) → 413 body_too_large", async () => {
    const { t } = await booted();
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await t.app.request("/api/v1/enroll", {
      method: "POST",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    await expectError(res, 413, "body_too_large");
    expectNothingStored(t);
  });

  it("JSON that is not an object → 422 validation_failed", async () => {
    const { t } = await booted();
    for (const body of ["[]", "null", '"token"', "42"]) await expectError(await raw(t, body), 422, "validation_failed");
    expectNothingStored(t);
  });

  it("missing token or mac → 422 validation_failed naming the field", async () => {
    const { t, token } = await booted();
    const noToken = await expectError(await postJson(t, "/api/v1/enroll", { mac }), 422, "validation_failed");
    expect(noToken.message).toMatch(/^token:/);
    const noMac = await expectError(await postJson(t, "/api/v1/enroll", { token }), 422, "validation_failed");
    expect(noMac.message).toMatch(/^mac:/);
    expectNothingStored(t);
  });

  it("wrong types (cpu_count as text, facts as a list, token as a number) → 422", async () => {
    const { t, token } = await booted();
    await expectError(await enroll(t, token, { facts: { cpu_count: "eight" } }), 422, "validation_failed");
    await expectError(await enroll(t, token, { facts: [1, 2] }), 422, "validation_failed");
    await expectError(await enroll(t, 12345 as unknown as string), 422, "validation_failed");
    await expectError(await enroll(t, token, { ip: "10.0.0.999" }), 422, "validation_failed");
    expectNothingStored(t);
  });

  it("MAC that does not parse, or carries a newline → 422, nothing stored", async () => {
    const { t, token } = await booted();
    for (const bad of ["52:54:00:12:34", "zz:54:00:12:34:56", "52:54:00:12:34:56\nfoo", ""]) {
      const body = await expectError(await enroll(t, token, { mac: bad }), 422, "validation_failed");
      expect(body.message).toMatch(/^mac:/);
    }
    expectNothingStored(t);
  });

  it("unknown field → 422 (strict body), serial with control characters → 422", async () => {
    const { t, token } = await booted();
    await expectError(await enroll(t, token, { role: "server" }), 422, "validation_failed");
    await expectError(await enroll(t, token, { serial: "SN\u0007" }), 422, "validation_failed");
    expectNothingStored(t);
  });

  it("MAC spelled with dashes and upper case → accepted and normalized", async () => {
    const { t, token } = await booted();
    expect((await enroll(t, token, { mac: "52-54-00-12-34-56".toUpperCase() })).status).toBe(201);
    expect(t.db.select().from(machines).get()).toMatchObject({ mac, state: "pending" });
  });
});

describe("POST /api/v1/node/events with bad input", () => {
  it("unknown type, bad ca_hash, huge detail → 422, nothing stored", async () => {
    const t = makeTestApp();
    const { credential } = await discoverAndEnroll(t);
    const auth = { authorization: `Bearer ${credential}` };
    await expectError(await postJson(t, "/api/v1/node/events", { type: "exploded" }, auth), 422, "validation_failed");
    await expectError(await postJson(t, "/api/v1/node/events", { type: "ready", ca_hash: "abc" }, auth), 422, "validation_failed");
    await expectError(await postJson(t, "/api/v1/node/events", { type: "failed", detail: "x".repeat(5000) }, auth), 422, "validation_failed");
    const res = await t.app.request("/api/v1/nodes/1/events", { headers: admin });
    expect(((await res.json()) as { events: unknown[] }).events).toHaveLength(0);
  });
});
