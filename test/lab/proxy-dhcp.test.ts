/**
 * ProxyDHCP with real clients: the site's dnsmasq hands out addresses only (no boot options),
 * edgejoin runs with EDGEJOIN_PROXY_DHCP=on, and a UEFI machine (OVMF's own PXE client) and a
 * BIOS machine (SeaBIOS with QEMU's iPXE NIC ROM) still reach `/boot.ipxe` and run the installer
 * script. Every edgejoin reply carries no address. The clients' DHCP requests are kept as
 * fixtures for the packet-level tests (copied to test/fixtures/dhcp/, replayed by test/dhcp/captured.test.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodePacket, hardwareAddress } from "../../server/dhcp/packet.js";
import { assertLabHost, httpExchanges, NetLab, netbootRequirements, openSite, readPcap, siteAddressing, tftpTransfers, waitFor } from "../helpers/netlab.js";

describe("ProxyDHCP in the lab", () => {
  it("dnsmasq leases only; OVMF PXE and BIOS iPXE boot through edgejoin's ProxyDHCP to /boot.ipxe and the installer script", async () => {
    assertLabHost(netbootRequirements);
    const lab = await NetLab.open();
    let passed = false;
    try {
      const site = await openSite(lab, {
        machines: 2,
        dhcp: "plain",
        edgejoinEnv: { EDGEJOIN_PROXY_DHCP: "on", EDGEJOIN_PROXY_DHCP_INTERFACES: "br0" },
      });
      const captures = [await lab.capture(site.lan, site.taps[0]!, "tap0"), await lab.capture(site.lan, site.taps[1]!, "tap1")];
      const uefiMac = "52:54:00:e7:d0:01";
      const biosMac = "52:54:00:e7:d0:02";
      const uefi = await lab.machine({ name: "uefi-proxy", ns: site.lan, tap: site.taps[0]!, mac: uefiMac, firmware: "uefi" });
      const bios = await lab.machine({ name: "bios-proxy", ns: site.lan, tap: site.taps[1]!, mac: biosMac, firmware: "bios" });
      const kernelPath = "/artifacts/ubuntu/casper/vmlinuz";
      const dead = () => site.edgejoin.process.death() ?? uefi.process.death() ?? bios.process.death() ?? site.dhcpServer?.death();
      for (const [i, mac] of [uefiMac, biosMac].entries()) {
        // The installer script names the cluster's kernel: iPXE fetching it means it ran that script.
        // (The lab's artifacts are empty stand-ins, so iPXE stops there with "Exec format error".)
        const got = await waitFor(
          `${mac} to run the installer script (GET ${kernelPath})`,
          () => {
            const http = httpExchanges(readPcap(captures[i]!.file), siteAddressing.httpPort).filter((x) => x.clientMac === mac);
            const kernel = http.find((x) => x.target === kernelPath);
            return kernel && { kernel, boot: http.find((x) => x.target.startsWith(`/boot.ipxe?mac=${encodeURIComponent(mac)}`)) };
          },
          { timeoutMs: 240_000, intervalMs: 1000, failIf: dead },
        );
        expect(got.boot?.status, `${mac}: GET /boot.ipxe?mac=… answered`).toBe(200);
        lab.timeline.mark(`${mac}: GET /boot.ipxe?mac=…`, got.boot!.at);
        lab.timeline.mark(`${mac}: GET ${kernelPath}`, got.kernel.at);
      }
      // edgejoin's own log agrees: it served each machine, by MAC, its installer script.
      const served = site.edgejoin.logLines().filter((l) => l.msg === "installer served");
      expect(served.map((l) => l.mac).sort(), "machines edgejoin served an installer script").toEqual(expect.arrayContaining([uefiMac, biosMac]));
      await uefi.stop();
      await bios.stop();
      const packets = [...(await captures[0]!.stop()), ...(await captures[1]!.stop())];

      // Every DHCP-shaped UDP payload on 67/68/4011, decoded with edgejoin's own codec.
      const dhcp = packets
        .filter((p) => p.proto === "udp" && [67, 68, 4011].includes(p.dstPort))
        .map((p) => ({ p, d: decodePacket(p.payload) }))
        .filter((x): x is { p: (typeof packets)[number]; d: Exclude<ReturnType<typeof decodePacket>, string> } => typeof x.d !== "string");
      const fromEdgejoin = dhcp.filter((x) => x.p.src === siteAddressing.edgejoin && x.d.op === 2);
      const fromRouter = dhcp.filter((x) => x.p.src === siteAddressing.dhcpServer && x.d.op === 2);
      expect(fromEdgejoin.length, "ProxyDHCP replies seen").toBeGreaterThan(0);
      // Never an address from edgejoin; the addresses come from the site's dnsmasq.
      expect(fromEdgejoin.map((x) => x.d.yiaddr).filter((a) => a !== "0.0.0.0")).toEqual([]);
      expect(fromRouter.some((x) => hardwareAddress(x.d) === uefiMac && x.d.yiaddr !== "0.0.0.0")).toBe(true);
      expect(
        fromRouter.every((x) => !x.d.options.has(67)),
        "the site's dnsmasq gives no boot file",
      ).toBe(true);

      // UEFI: firmware (arch 7, no user-class) is told snponly.efi, fetches it over TFTP; its iPXE is told /boot.ipxe.
      const toUefi = fromEdgejoin.filter((x) => hardwareAddress(x.d) === uefiMac).map((x) => x.d.options.get(67)?.toString("latin1"));
      expect(toUefi).toContain("snponly.efi");
      expect(toUefi).toContain(`${site.publicUrl}/boot.ipxe`);
      expect(
        tftpTransfers(packets)
          .filter((t) => t.clientMac === uefiMac && t.complete)
          .map((t) => t.file),
      ).toEqual(["snponly.efi"]);
      // OVMF's 4011 REQUEST comes from port 4011 and is answered there.
      const ovmf4011 = dhcp.find((x) => x.p.dstPort === 4011 && hardwareAddress(x.d) === uefiMac && !x.d.options.get(77));
      if (ovmf4011) expect(fromEdgejoin.some((x) => x.p.srcPort === 4011 && x.p.dstPort === ovmf4011.p.srcPort)).toBe(true);
      // BIOS: QEMU's NIC ROM is iPXE, so it goes straight to /boot.ipxe.
      const toBios = fromEdgejoin.filter((x) => hardwareAddress(x.d) === biosMac).map((x) => x.d.options.get(67)?.toString("latin1"));
      expect(toBios).toContain(`${site.publicUrl}/boot.ipxe`);

      // The packets of this boot, beside the lab's logs (copied to LAB_FIXTURES_OUT when set):
      // test/fixtures/dhcp/ holds those of a passing run, replayed by test/dhcp/captured.test.ts.
      const out = process.env.LAB_FIXTURES_OUT || lab.path("fixtures");
      mkdirSync(out, { recursive: true });
      const requests = dhcp.filter((x) => x.d.op === 1);
      const isIpxe = (x: (typeof dhcp)[number]) => x.d.options.get(77)?.includes("iPXE") ?? false;
      const type = (x: (typeof dhcp)[number]) => x.d.options.get(53)?.[0];
      const pick = (name: string, f: (x: (typeof dhcp)[number]) => boolean) => {
        const found = dhcp.find(f);
        if (found) writeFileSync(join(out, `${name}.bin`), found.p.payload);
        return found;
      };
      const ovmfDiscover = pick("ovmf-pxe-discover", (x) => x.d.op === 1 && hardwareAddress(x.d) === uefiMac && !isIpxe(x) && type(x) === 1);
      pick("ovmf-pxe-request", (x) => x.d.op === 1 && hardwareAddress(x.d) === uefiMac && !isIpxe(x) && type(x) === 3);
      // The offer OVMF took: it went on to fetch the file it names.
      pick("edgejoin-offer-to-ovmf", (x) => x.p.src === siteAddressing.edgejoin && hardwareAddress(x.d) === uefiMac && x.d.xid === ovmfDiscover?.d.xid);
      pick("ipxe-efi-discover", (x) => x.d.op === 1 && hardwareAddress(x.d) === uefiMac && isIpxe(x) && type(x) === 1);
      pick("ipxe-bios-discover", (x) => x.d.op === 1 && hardwareAddress(x.d) === biosMac && isIpxe(x) && type(x) === 1);
      pick("ipxe-bios-request", (x) => x.d.op === 1 && hardwareAddress(x.d) === biosMac && isIpxe(x) && type(x) === 3);
      pick("pxe-request-4011", (x) => x.d.op === 1 && x.p.dstPort === 4011);
      const summary = requests.map((x) => ({
        mac: hardwareAddress(x.d),
        srcPort: x.p.srcPort,
        dstPort: x.p.dstPort,
        type: x.d.options.get(53)?.[0],
        vendor: x.d.options.get(60)?.toString("latin1"),
        userClass: x.d.options.get(77)?.toString("latin1"),
      }));
      writeFileSync(join(lab.path("."), "dhcp-requests.json"), JSON.stringify(summary, null, 2));
      console.info(`ProxyDHCP lab: client requests\n${JSON.stringify(summary)}`);
      passed = true;
    } finally {
      const timeline = lab.timeline.format();
      if (!passed) console.error(`ProxyDHCP lab: logs, serial consoles and captures kept in ${lab.keep("proxy-dhcp")}\n${timeline}`);
      else console.info(`ProxyDHCP lab timeline:\n${timeline}`);
      await lab.close();
    }
  }, 330_000);
});
