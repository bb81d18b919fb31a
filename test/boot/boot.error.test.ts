import { describe, expect, it } from "vitest";
import { auditEvents, clusters, machines } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { expectGolden } from "../helpers/golden.js";

const good = "mac=52%3A54%3A00%3A12%3A34%3A56";

/** Every refused boot query: a console message (200 so iPXE runs it), nothing stored. */
const refused: [string, string][] = [
  ["a MAC that does not parse", "mac=52:54:00:12:34"],
  ["a MAC with a newline", `mac=${encodeURIComponent("52:54:00:12:34:56\nkernel http://evil/x")}`],
  ["a MAC with a space", `mac=${encodeURIComponent("52:54:00:12:34:56 x")}`],
  ["a MAC with ${", `mac=${encodeURIComponent("${net0/mac}")}`],
  ["a MAC as raw bytes (what :uristring sends)", "mac=RT%00%12%34V"],
  ["no MAC at all", "serial=SN1"],
  ["an empty MAC", "mac="],
  ["a UUID that is not a UUID", `${good}&uuid=not-a-uuid`],
  ["a serial with a newline", `${good}&serial=${encodeURIComponent("SN1\n#!ipxe")}`],
  ["a serial with ${", `${good}&serial=${encodeURIComponent("${root-path}")}`],
  ["a product with a quote and control byte", `${good}&product=${encodeURIComponent('NUC"\u0007')}`],
  ["a serial longer than 64 characters", `${good}&serial=${"S".repeat(65)}`],
  ["an arch with a space", `${good}&arch=${encodeURIComponent("x86 64")}`],
  ["a platform with a quote", `${good}&platform=${encodeURIComponent("efi'")}`],
  ["an unknown parameter", `${good}&hostname=evil`],
  ["a parameter given twice", `${good}&mac=52:54:00:00:00:01`],
  ["an overlong query string", `${good}&serial=${"x".repeat(2000)}`],
];

describe("GET /boot.ipxe with bad input", () => {
  it.each(refused)("%s → message script, nothing stored", async (_why, query) => {
    const { app, db } = makeTestApp();
    const before = db.select().from(auditEvents).all().length;
    const res = await app.request(`/boot.ipxe?${query}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgejoin-error")).toBe("invalid_boot_query");
    const text = await res.text();
    expect(text.startsWith("#!ipxe\necho edgejoin: cannot identify this machine\n")).toBe(true);
    // Nothing the client sent reaches the script beyond a parameter name we sanitized.
    expect(text).not.toMatch(/evil|kernel http|#!ipxe\n.*#!ipxe|\$\{(?!platform)/s);
    expect(text).not.toMatch(/^(kernel|initrd|chain|imgexec|boot)\b/m);
    expect(db.select().from(machines).all()).toHaveLength(0);
    expect(db.select().from(auditEvents).all()).toHaveLength(before);
  });

  it("a MAC that does not parse → the golden message script", async () => {
    const { app } = makeTestApp();
    expectGolden("invalid-mac.ipxe", await (await app.request("/boot.ipxe?mac=zz")).text());
  });

  it("no cluster to install into → message script, machine still recorded", async () => {
    const { app, db } = makeTestApp();
    db.delete(clusters).run();
    const text = await (await app.request(`/boot.ipxe?${good}`)).text();
    expect(text).toContain("echo edgejoin: no cluster for machine 52:54:00:12:34:56");
    expect(text).not.toMatch(/^kernel/m);
    expect(db.select().from(machines).all()).toHaveLength(1);
  });

  it("an installer profile that could inject iPXE commands is never rendered", async () => {
    const { app, db } = makeTestApp();
    db.update(clusters)
      .set({
        installer: { kind: "cloud-image", kernel_url: "vmlinuz", initrd_urls: ["initrd"], kernel_args: "quiet\nshell", iso_url: null },
      })
      .run();
    const res = await app.request(`/boot.ipxe?${good}`);
    // The view check fails closed: a message, never a script with the admin's newline in it.
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("echo edgejoin: the installer profile of cluster default is invalid");
    expect(text).not.toContain("shell");
    expect(text).not.toMatch(/^kernel/m);
  });

  it("unknown route → 404 JSON with a stable code", async () => {
    const { app } = makeTestApp();
    const res = await app.request("/no-such-thing");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });
});
