/**
 * UEFI HTTP boot through edgejoin's ProxyDHCP: the site's dnsmasq leases addresses only, OVMF's
 * PXE entries are switched off (fw_cfg `opt/org.tianocore/IPv4PXESupport`/`IPv6PXESupport`), so
 * its HTTP boot entry asks DHCP as `HTTPClient`, is answered with the URL of an iPXE binary on
 * edgejoin's HTTP port, downloads it, and that iPXE chains to `/boot.ipxe` and the installer
 * script. No TFTP at all. The HTTPClient DISCOVER and edgejoin's answer are kept as fixtures.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodePacket, hardwareAddress } from "../../server/dhcp/packet.js";
import {
  assertLabHost,
  httpExchanges,
  labFiles,
  NetLab,
  netbootRequirements,
  openSite,
  readPcap,
  sha256,
  siteAddressing,
  tftpTransfers,
  waitFor,
} from "../helpers/netlab.js";

describe("UEFI HTTP boot in the lab", () => {
  it("OVMF's HTTP boot entry (vendor class HTTPClient) → ProxyDHCP's /ipxe/snponly.efi URL → iPXE → /boot.ipxe → installer script, no TFTP", async () => {
    assertLabHost(netbootRequirements);
    const lab = await NetLab.open();
    let passed = false;
    try {
      const site = await openSite(lab, {
        machines: 1,
        dhcp: "plain",
        edgejoinEnv: { EDGEJOIN_PROXY_DHCP: "on", EDGEJOIN_PROXY_DHCP_INTERFACES: "br0" },
      });
      const capture = await lab.capture(site.lan, site.taps[0]!, "tap0");
      const mac = "52:54:00:e7:d1:01";
      const vm = await lab.machine({
        name: "uefi-http",
        ns: site.lan,
        tap: site.taps[0]!,
        mac,
        firmware: "uefi",
        // OVMF offers PXEv4, PXEv6, HTTPv4, HTTPv6 for a NIC, in that order: without PXE, HTTPv4 goes first.
        extraArgs: ["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n", "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"],
      });
      const kernelPath = "/artifacts/ubuntu/casper/vmlinuz";
      const dead = () => site.edgejoin.process.death() ?? vm.process.death() ?? site.dhcpServer?.death();
      const got = await waitFor(
        `${mac} to run the installer script (GET ${kernelPath})`,
        () => {
          const http = httpExchanges(readPcap(capture.file), siteAddressing.httpPort).filter((x) => x.clientMac === mac);
          const kernel = http.find((x) => x.target === kernelPath);
          return kernel && { kernel, http };
        },
        { timeoutMs: 240_000, intervalMs: 1000, failIf: dead },
      );
      await vm.stop();
      const packets = await capture.stop();

      // The firmware's download: the whole snponly.efi over HTTP, byte for byte.
      const binary = got.http.find((x) => x.method === "GET" && x.target === "/ipxe/snponly.efi");
      expect(binary?.status, "GET /ipxe/snponly.efi by the firmware").toBe(200);
      const expected = readFileSync(join(labFiles.ipxeDir, "snponly.efi"));
      expect(binary!.body.length).toBe(expected.length);
      expect(sha256(binary!.body)).toBe(sha256(expected));
      const boot = got.http.find((x) => x.target.startsWith(`/boot.ipxe?mac=${encodeURIComponent(mac)}`));
      expect(boot?.status, "GET /boot.ipxe?mac=… by the iPXE it downloaded").toBe(200);
      expect(tftpTransfers(packets).filter((t) => t.clientMac === mac)).toEqual([]);
      lab.timeline.mark(`${mac}: GET /ipxe/snponly.efi`, binary!.at);
      lab.timeline.mark(`${mac}: GET /boot.ipxe?mac=…`, boot!.at);
      lab.timeline.mark(`${mac}: GET ${kernelPath}`, got.kernel.at);

      const dhcp = packets
        .filter((p) => p.proto === "udp" && [67, 68, 4011].includes(p.dstPort))
        .map((p) => ({ p, d: decodePacket(p.payload) }))
        .filter((x): x is { p: (typeof packets)[number]; d: Exclude<ReturnType<typeof decodePacket>, string> } => typeof x.d !== "string")
        .filter((x) => hardwareAddress(x.d) === mac);
      const vendor = (x: (typeof dhcp)[number]) => x.d.options.get(60)?.toString("latin1") ?? "";
      const httpDiscover = dhcp.find((x) => x.d.op === 1 && x.d.options.get(53)?.[0] === 1 && vendor(x).startsWith("HTTPClient"));
      expect(httpDiscover, "a DISCOVER with vendor class HTTPClient").toBeDefined();
      expect(
        dhcp.filter((x) => x.d.op === 1 && vendor(x).startsWith("PXEClient") && !x.d.options.get(77)?.includes("iPXE")),
        "firmware PXE requests",
      ).toEqual([]);
      const answer = dhcp.find((x) => x.p.src === siteAddressing.edgejoin && x.d.op === 2 && x.d.xid === httpDiscover!.d.xid);
      expect(answer?.d.options.get(67)?.toString("latin1")).toBe(`${site.publicUrl}/ipxe/snponly.efi`);
      expect(answer?.d.options.get(60)?.toString("latin1")).toBe("HTTPClient");
      expect(answer?.d.yiaddr).toBe("0.0.0.0");

      // The same answers, as /metrics counts them.
      const metrics = (await lab.fetchIn(site.lan, `${site.publicUrl}/metrics`)).body;
      const answered = (type: string) =>
        Number(
          new RegExp(`^edgejoin_proxy_dhcp_packets_total\\{port="dhcp",type="${type}",result="answered",reason="none"\\} (\\d+)$`, "m").exec(metrics)?.[1] ?? 0,
        );
      expect(answered("discover"), "DISCOVERs answered in /metrics").toBeGreaterThanOrEqual(2);

      const out = process.env.LAB_FIXTURES_OUT || lab.path("fixtures");
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, "ovmf-http-discover.bin"), httpDiscover!.p.payload);
      writeFileSync(join(out, "edgejoin-offer-to-ovmf-http.bin"), answer!.p.payload);
      console.info(`HTTP boot lab: firmware vendor class ${vendor(httpDiscover!)}, option 93 ${httpDiscover!.d.options.get(93)?.toString("hex")}`);
      passed = true;
    } finally {
      const timeline = lab.timeline.format();
      if (!passed) console.error(`HTTP boot lab: logs, serial console and capture kept in ${lab.keep("http-boot")}\n${timeline}`);
      else console.info(`HTTP boot lab timeline:\n${timeline}`);
      await lab.close();
    }
  }, 330_000);
});
