// Not collected by vitest: with Debian 12's iPXE (build of January 2019) this recipe loops. Seen in
// the lab: OVMF RRQ "snponly.efi" (tsize 0, blksize 1468, windowsize 4; aborted size probe), again
// without tsize, runs it; iPXE's DHCP gets "Filename: snponly.efi" and sends RRQ "snponly.efi"
// (blksize 1432, tsize 0) — never an RRQ for autoexec.ipxe (the string is not in its binaries).
// Rename back to .test.ts once the lab has an iPXE that fetches autoexec.ipxe over TFTP.
/**
 * A site whose DHCP server can set only next-server and filename (dnsmasq with a single
 * `dhcp-boot`, no user-class match): OVMF's PXE fetches snponly.efi from edgejoin's TFTP, and
 * iPXE, handed the same filename again, must find `autoexec.ipxe` on edgejoin's TFTP server
 * (iPXE builds from 2023 on ask for it before the DHCP filename) and reach `/boot.ipxe`.
 */
import { describe, expect, it } from "vitest";
import {
  assertLabHost,
  httpExchanges,
  labDnsmasqConf,
  NetLab,
  netbootRequirements,
  readPcap,
  siteAddressing,
  tftpTransfers,
  waitFor,
} from "../helpers/netlab.js";

describe("next-server + filename only: autoexec.ipxe", () => {
  it("dnsmasq with only dhcp-boot=snponly.efi → OVMF TFTPs snponly.efi, iPXE TFTPs autoexec.ipxe, GET /boot.ipxe, no second binary", async () => {
    assertLabHost(netbootRequirements);
    const lab = await NetLab.open();
    const a = siteAddressing;
    let passed = false;
    try {
      const lan = await lab.namespace("lan");
      await lab.bridge(lan, "br0", [`${a.edgejoin}/${a.prefixLength}`, `${a.edgejoin6}/64`]);
      await lab.tap(lan, "tap0", "br0");
      const publicUrl = `http://${a.edgejoin}:${a.httpPort}`;
      const edgejoin = await lab.edgejoin(lan, { publicUrl, env: { EDGEJOIN_HTTP_PORT: String(a.httpPort) } });
      const dhcpNs = await lab.namespace("dhcp");
      await lab.veth(
        { ns: lan, name: "dhcp0", bridge: "br0" },
        { ns: dhcpNs, name: "eth0", addresses: [`${a.dhcpServer}/${a.prefixLength}`, `${a.dhcpServer6}/64`] },
      );
      // The whole netboot configuration of such a router: one boot file and the server to get it from.
      const conf = `${labDnsmasqConf({ iface: "eth0", range: a.range, ula: a.ula })}\ndhcp-boot=snponly.efi,,${a.edgejoin}\n`;
      const dnsmasq = await lab.dnsmasq(dhcpNs, conf);
      const capture = await lab.capture(lan, "tap0", "tap0");
      const mac = "52:54:00:e7:d2:01";
      const vm = await lab.machine({ name: "uefi-autoexec", ns: lan, tap: "tap0", mac, firmware: "uefi" });
      const dead = () => edgejoin.process.death() ?? vm.process.death() ?? dnsmasq.death();
      const boot = await waitFor(
        `${mac} to reach /boot.ipxe through autoexec.ipxe`,
        () => {
          const packets = readPcap(capture.file);
          const binaries = tftpTransfers(packets).filter((t) => t.clientMac === mac && t.complete && t.file !== "autoexec.ipxe");
          if (binaries.length > 1)
            throw new Error(`boot loop: ${binaries.map((t) => t.file).join(", ")} fetched ${binaries.length} times; iPXE never asked for autoexec.ipxe`);
          return httpExchanges(packets, a.httpPort).find((x) => x.clientMac === mac && x.target.startsWith("/boot.ipxe"));
        },
        { timeoutMs: 180_000, intervalMs: 1000, failIf: dead },
      );
      await vm.stop();
      const packets = await capture.stop();
      const files = tftpTransfers(packets)
        .filter((t) => t.clientMac === mac)
        .map((t) => t.file);
      expect(files).toContain("autoexec.ipxe");
      expect(boot.status).toBe(200);
      passed = true;
    } finally {
      const timeline = lab.timeline.format();
      if (!passed) console.error(`autoexec lab: logs, serial console and capture kept in ${lab.keep("autoexec")}\n${timeline}`);
      await lab.close();
    }
  }, 300_000);
});
