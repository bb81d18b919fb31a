import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, clusters, machines } from "../../db/schema.js";
import type { MachineState } from "../../server/lifecycle/machine.js";
import { makeTestApp } from "../helpers/app.js";
import { expectGolden } from "../helpers/golden.js";
import { flushDeferred } from "../../server/store/deferred.js";

/** What iPXE sends after the chain: the MAC's colons arrive as %3A. */
const identity =
  "mac=52%3A54%3A00%3A12%3A34%3A56&uuid=8C3A5E2B-1D4F-4B6A-9C2E-7F1A0B3C4D5E&serial=SN-0001&arch=x86_64&platform=efi&manufacturer=Intel%20Corporation&product=NUC13ANHi5";

describe("GET /boot.ipxe", () => {
  it("bare request → chain script carrying iPXE's identity variables, nothing stored", async () => {
    const { app, db } = makeTestApp();
    const res = await app.request("/boot.ipxe");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expectGolden("chain.ipxe", await res.text());
    expect(db.select().from(machines).all()).toHaveLength(0);
  });

  it("the chain never puts :uristring on the MAC or UUID (it would encode their raw bytes)", async () => {
    const { app } = makeTestApp();
    const text = await (await app.request("/boot.ipxe")).text();
    expect(text).toContain("mac=${net0/mac}&uuid=${uuid}&");
    expect(text).not.toMatch(/\$\{(net0\/mac|uuid):uristring\}/);
    for (const v of ["serial", "manufacturer", "product"]) expect(text).toContain(`\${${v}:uristring}`);
  });

  it("first sight → discovered machine with normalized identity, one audit event, installer script", async () => {
    const { app, db } = makeTestApp();
    const res = await app.request(`/boot.ipxe?${identity}`);
    expect(res.status).toBe(200);
    expectGolden("install-ubuntu.ipxe", await res.text());
    const all = db.select().from(machines).all();
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({
      mac: "52:54:00:12:34:56",
      uuid: "8c3a5e2b-1d4f-4b6a-9c2e-7f1a0b3c4d5e",
      serial: "SN-0001",
      manufacturer: "Intel Corporation",
      product: "NUC13ANHi5",
      arch: "x86_64",
      platform: "efi",
      state: "discovered",
    });
    expect(db.select().from(auditEvents).where(eq(auditEvents.action, "machine.discovered")).all()).toHaveLength(1);
  });

  it("later sight → same row, last seen moves, no second discovery event, empty values keep what was known", async () => {
    const { app, db, clock } = makeTestApp();
    await app.request(`/boot.ipxe?${identity}`);
    const first = db.select().from(machines).get()!;
    clock.advance(60_000);
    await app.request("/boot.ipxe?mac=52-54-00-12-34-56&serial=&uuid=");
    // A known machine's sighting is written with the next flush of deferred writes.
    flushDeferred(db);
    const all = db.select().from(machines).all();
    expect(all).toHaveLength(1);
    expect(all[0]!.lastSeenAt).toBe(first.lastSeenAt + 60_000);
    expect(all[0]!.serial).toBe("SN-0001");
    expect(all[0]!.uuid).toBe("8c3a5e2b-1d4f-4b6a-9c2e-7f1a0b3c4d5e");
    expect(db.select().from(auditEvents).where(eq(auditEvents.action, "machine.discovered")).all()).toHaveLength(1);
  });

  it.each([["52:54:00:12:34:56"], ["52-54-00-12-34-56"], ["5254.0012.3456"], ["525400123456"], ["52:54:00:12:34:56".toUpperCase()]])(
    "MAC written as %s → stored as 52:54:00:12:34:56",
    async (mac) => {
      const { app, db } = makeTestApp();
      await app.request(`/boot.ipxe?mac=${encodeURIComponent(mac)}`);
      expect(db.select().from(machines).get()?.mac).toBe("52:54:00:12:34:56");
    },
  );

  const installStates: MachineState[] = ["discovered", "pending", "approved", "provisioning", "failed"];
  it.each(installStates)("state %s → installer script", async (state) => {
    const { app, db } = makeTestApp();
    await app.request(`/boot.ipxe?${identity}`);
    db.update(machines).set({ state }).run();
    const text = await (await app.request(`/boot.ipxe?${identity}`)).text();
    expectGolden("install-ubuntu.ipxe", text);
  });

  it("state joined → local-disk script", async () => {
    const { app, db } = makeTestApp();
    await app.request(`/boot.ipxe?${identity}`);
    db.update(machines).set({ state: "joined" }).run();
    expectGolden("local-disk.ipxe", await (await app.request(`/boot.ipxe?${identity}`)).text());
  });

  it.each(["rejected", "retired"] as const)("state %s → message, no kernel", async (state) => {
    const { app, db } = makeTestApp();
    await app.request(`/boot.ipxe?${identity}`);
    db.update(machines).set({ state }).run();
    const text = await (await app.request(`/boot.ipxe?${identity}`)).text();
    expect(text.startsWith("#!ipxe\n")).toBe(true);
    expectGolden(`${state}.ipxe`, text);
    expect(text).not.toMatch(/^(kernel|initrd|chain|imgexec|boot)\b/m);
  });

  it("cloud-image cluster → kernel with its own arguments, no ISO, seed argument last", async () => {
    const { app, db } = makeTestApp();
    db.update(clusters)
      .set({
        installer: {
          kind: "cloud-image",
          kernel_url: "debian/vmlinuz",
          initrd_urls: ["debian/initrd.img"],
          kernel_args: "root=/dev/vda console=ttyS0",
          iso_url: null,
        },
      })
      .run();
    expectGolden("install-cloud-image.ipxe", await (await app.request(`/boot.ipxe?${identity}`)).text());
  });

  it("absolute installer URLs are used as given; relative ones go under /artifacts/", async () => {
    const { app, db } = makeTestApp();
    db.update(clusters)
      .set({
        installer: {
          kind: "cloud-image",
          kernel_url: "http://mirror.example.test/images/vmlinuz",
          initrd_urls: ["local/initrd.img", "http://mirror.example.test/images/firmware.cpio"],
          kernel_args: "",
          iso_url: null,
        },
      })
      .run();
    const text = await (await app.request(`/boot.ipxe?${identity}`)).text();
    expect(text).toContain(
      "kernel http://mirror.example.test/images/vmlinuz initrd=initrd.img initrd=firmware.cpio ds=nocloud-net;s=http://10.77.0.1:8080/cloud-init/52:54:00:12:34:56/ ||",
    );
    expect(text).toContain("initrd --name initrd.img http://10.77.0.1:8080/artifacts/local/initrd.img");
  });
});
