import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { machines, auditEvents } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { expectGolden } from "../helpers/golden.js";

const identity =
  "mac=52%3A54%3A00%3A12%3A34%3A56&uuid=8C3A5E2B-1D4F-4B6A-9C2E-7F1A0B3C4D5E&serial=SN-0001&arch=x86_64&platform=efi&manufacturer=Intel%20Corporation&product=NUC13ANHi5";

describe("GET /boot.ipxe", () => {
  it("bare request → chain script carrying iPXE's identity variables", async () => {
    const { app, db } = makeTestApp();
    const res = await app.request("/boot.ipxe");
    expect(res.status).toBe(200);
    expectGolden("chain.ipxe", await res.text());
    expect(db.select().from(machines).all()).toHaveLength(0);
  });

  it("first sight → discovered machine with normalized identity, audit event, installer script", async () => {
    const { app, db } = makeTestApp();
    const res = await app.request(`/boot.ipxe?${identity}`);
    expect(res.status).toBe(200);
    expectGolden("install-ubuntu.ipxe", await res.text());
    const [m] = db.select().from(machines).all();
    expect(m).toMatchObject({
      mac: "52:54:00:12:34:56",
      uuid: "8c3a5e2b-1d4f-4b6a-9c2e-7f1a0b3c4d5e",
      serial: "SN-0001",
      manufacturer: "Intel Corporation",
      product: "NUC13ANHi5",
      arch: "x86_64",
      platform: "efi",
      state: "discovered",
    });
    const audit = db.select().from(auditEvents).where(eq(auditEvents.action, "machine.discovered")).all();
    expect(audit).toHaveLength(1);
  });
});
