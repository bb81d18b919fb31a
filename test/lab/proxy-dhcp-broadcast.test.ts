/**
 * Where ProxyDHCP's OFFER goes on a LAN whose edgejoin host has no default route (the lab, and
 * hosts whose gateway is elsewhere): a real edgejoin with EDGEJOIN_PROXY_DHCP=on in one namespace,
 * a client namespace sending a captured OVMF DISCOVER. OVMF takes offers only at 255.255.255.255
 * (the QEMU lab run showed it ignoring the subnet broadcast), so one must leave by the bridge.
 * No QEMU: seconds, not minutes.
 */
import { describe, expect, it } from "vitest";
import { decodePacket } from "../../server/dhcp/packet.js";
import { assertLabHost, NetLab, netbootRequirements, readPcap, repoRoot, run, waitFor } from "../helpers/netlab.js";

describe("ProxyDHCP broadcast", () => {
  it("a DISCOVER from a client without an address → an OFFER from edgejoin's address:67 to 255.255.255.255:68 on the LAN", async () => {
    assertLabHost(netbootRequirements);
    const lab = await NetLab.open();
    let passed = false;
    try {
      const lan = await lab.namespace("lan");
      await lab.bridge(lan, "br0", ["10.77.0.1/24"]);
      const client = await lab.namespace("client");
      await lab.veth({ ns: lan, name: "c0", bridge: "br0" }, { ns: client, name: "eth0", addresses: [] });
      // The client has no address yet; its own limited broadcast needs a route in its namespace.
      await run("ip", ["-n", client, "route", "add", "255.255.255.255", "dev", "eth0"]);
      const server = await lab.edgejoin(lan, { publicUrl: "http://10.77.0.1:8080", env: { EDGEJOIN_PROXY_DHCP: "on", EDGEJOIN_PROXY_DHCP_INTERFACES: "br0" } });
      const capture = await lab.capture(client, "eth0", "client");
      const send = [
        'import { createSocket } from "node:dgram";',
        'import { readFileSync } from "node:fs";',
        'const s = createSocket("udp4");',
        `const pkt = readFileSync(${JSON.stringify(`${repoRoot}/test/fixtures/dhcp/ovmf-pxe-discover.bin`)});`,
        's.bind(68, "0.0.0.0", () => { s.setBroadcast(true); let n = 0; const t = setInterval(() => { s.send(pkt, 67, "255.255.255.255"); if (++n === 5) { clearInterval(t); setTimeout(() => s.close(), 500); } }, 1000); });',
      ].join("\n");
      lab.spawn(client, "client-send", [process.execPath, "--input-type=module", "-e", send]);
      const offer = await waitFor(
        "an OFFER to 255.255.255.255:68 on the client's link",
        () =>
          readPcap(capture.file).find((p) => {
            if (p.proto !== "udp" || p.srcPort !== 67 || p.dstPort !== 68 || p.dst !== "255.255.255.255") return false;
            const d = decodePacket(p.payload);
            return typeof d !== "string" && d.op === 2;
          }),
        { timeoutMs: 20_000, intervalMs: 250, failIf: () => server.process.death() },
      );
      expect(offer.src).toBe("10.77.0.1");
      const d = decodePacket(offer.payload);
      expect(typeof d === "string" ? d : [d.yiaddr, d.siaddr, d.options.get(67)?.toString()]).toEqual(["0.0.0.0", "10.77.0.1", "snponly.efi"]);
      passed = true;
    } finally {
      if (!passed) console.error(`ProxyDHCP broadcast: logs and capture kept in ${lab.keep("proxy-dhcp-broadcast")}`);
      await lab.close();
    }
  }, 60_000);
});
