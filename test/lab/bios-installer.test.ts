/**
 * A BIOS machine from power-on to the installer through edgejoin's ProxyDHCP: SeaBIOS with QEMU's
 * iPXE NIC ROM (SeaBIOS has no PXE client of its own, and every BIOS NIC ROM QEMU ships is iPXE,
 * which asks as user-class `iPXE` and so is handed `/boot.ipxe` directly, never `undionly.kpxe`),
 * the site's dnsmasq leasing addresses only. The installer script boots the lab's stand-in
 * installer (the guest image's kernel and initrd, see installer-standin.ts), which fetches its
 * seed, writes both blank disks and reports SUCCESS to edgejoin's installer webhook.
 */
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureGuestImage, guestBuildTimeoutMs } from "../helpers/guest-image.js";
import { assertLabHost, diskRequirements, httpExchanges, NetLab, netbootRequirements, openSite, run, siteAddressing, waitFor } from "../helpers/netlab.js";
import { installedDisks, placeInstaller, standinInstaller } from "./installer-standin.js";

/** The guest image build, should this run have to make it, then the machine's own 15 minutes. */
const testTimeoutMs = guestBuildTimeoutMs + 900_000;

describe("BIOS machine through ProxyDHCP to the installer", () => {
  it("SeaBIOS + iPXE ROM, dnsmasq leasing only → ProxyDHCP /boot.ipxe → stand-in installer writes the disks and reports SUCCESS", {
    timeout: testTimeoutMs,
  }, async () => {
    assertLabHost([...netbootRequirements, ...diskRequirements]);
    // `npm test` builds it before the run (test/preflight/guest-image.ts); this is for a lone run.
    const image = await ensureGuestImage();
    const lab = await NetLab.open();
    let passed = false;
    try {
      const artifactsDir = lab.path("artifacts");
      mkdirSync(artifactsDir, { recursive: true });
      copyFileSync(image.kernel, join(artifactsDir, "vmlinuz"));
      copyFileSync(image.initrd, join(artifactsDir, "initrd.img"));
      placeInstaller(artifactsDir, image);
      const adminToken = randomBytes(24).toString("hex");
      const site = await openSite(lab, {
        machines: 1,
        dhcp: "plain",
        edgejoinEnv: {
          EDGEJOIN_PROXY_DHCP: "on",
          EDGEJOIN_PROXY_DHCP_INTERFACES: "br0",
          EDGEJOIN_ARTIFACTS_DIR: artifactsDir,
          EDGEJOIN_ADMIN_TOKEN: adminToken,
        },
      });
      const api = async (method: string, path: string, body?: unknown) => {
        const res = await lab.fetchIn(site.lan, `${site.publicUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
        return JSON.parse(res.body) as Record<string, unknown>;
      };
      const { clusters } = (await api("GET", "/api/v1/clusters")) as { clusters: { id: number; is_default: boolean }[] };
      const cluster = clusters.find((c) => c.is_default);
      if (!cluster) throw new Error("edgejoin made no default cluster at first start");
      await api("PATCH", `/api/v1/clusters/${cluster.id}`, { installer: standinInstaller });

      const vda = lab.path("bios.vda.qcow2");
      const vdb = lab.path("bios.vdb.qcow2");
      await run("qemu-img", ["create", "-q", "-f", "qcow2", vda, `${installedDisks.rootMiB}M`]);
      await run("qemu-img", ["create", "-q", "-f", "qcow2", vdb, `${installedDisks.espMiB}M`]);
      const capture = await lab.capture(site.lan, site.taps[0]!, "tap0");
      const mac = "52:54:00:e7:d3:01";
      const vm = await lab.machine({
        name: "bios-installer",
        ns: site.lan,
        tap: site.taps[0]!,
        mac,
        firmware: "bios",
        memoryMb: 768,
        disk: { image: vda, format: "qcow2", overlay: false },
        extraArgs: ["-drive", `file=${vdb},format=qcow2,if=none,id=vdb`, "-device", "virtio-blk-pci,drive=vdb,bootindex=2"],
      });
      const failIf = () =>
        site.edgejoin.process.death() ?? vm.process.death() ?? site.dhcpServer?.death() ?? /edgejoin-installer: FAILED[^\r\n]*/.exec(vm.serial())?.[0];
      await waitFor(`${mac}'s stand-in installer to finish`, () => (/edgejoin-installer: done - rebooting/.test(vm.serial()) ? true : undefined), {
        timeoutMs: 420_000,
        intervalMs: 1000,
        failIf,
      });
      lab.timeline.mark(`${mac}: installer done`);
      await vm.stop();
      const packets = await capture.stop();

      // Every step of the way, from the capture and the console.
      const http = httpExchanges(packets, siteAddressing.httpPort).filter((x) => x.clientMac === mac);
      const boot = http.find((x) => x.target.startsWith(`/boot.ipxe?mac=${encodeURIComponent(mac)}`));
      expect(boot?.status).toBe(200);
      expect(boot?.body.toString()).toContain(`kernel ${site.publicUrl}/artifacts/vmlinuz `);
      expect(Object.fromEntries(new URLSearchParams(boot!.target.split("?")[1]))).toMatchObject({ mac, arch: "i386", platform: "pcbios" });
      expect(http.find((x) => x.target === "/artifacts/vmlinuz")?.status).toBe(200);
      const serial = vm.serial();
      expect(serial).toContain(`Filename: ${site.publicUrl}/boot.ipxe`);
      expect(serial).toContain(`edgejoin: installing ${mac} for cluster default`);
      expect(serial).toMatch(/edgejoin-installer: disks written \(\d+ MiB\)/);
      expect(serial).toContain("edgejoin-installer: event finish subiquity/Install/install SUCCESS posted");
      lab.timeline.mark(`${mac}: GET /boot.ipxe?mac=…`, boot!.at);
      passed = true;
    } finally {
      const timeline = lab.timeline.format();
      if (!passed) console.error(`BIOS installer lab: logs, serial console and capture kept in ${lab.keep("bios-installer")}\n${timeline}`);
      else console.info(`BIOS installer lab timeline:\n${timeline}`);
      await lab.close();
    }
  });
});
