/**
 * DHCP requests captured in the QEMU lab (test/lab/proxy-dhcp.test.ts; dnsmasq leasing addresses
 * only) replayed through the decision: OVMF's own PXE client, OVMF's UEFI HTTP boot entry and
 * QEMU's iPXE NIC ROM on SeaBIOS, each to the answer real clients need.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodePacket, encodePacket } from "../../server/dhcp/packet.js";
import { answerProxyDhcp, type ProxyAnswer } from "../../server/dhcp/proxy.js";

const settings = {
  publicUrl: "http://10.77.0.1:8080",
  subnets: [{ address: "10.77.0.1", prefix: 24 }],
  defaultAddress: "10.77.0.1",
  uefiBinary: "snponly.efi" as const,
  arm64Binary: undefined,
};

function captured(name: string) {
  const raw = readFileSync(new URL(`../fixtures/dhcp/${name}.bin`, import.meta.url));
  const p = decodePacket(raw);
  if (typeof p === "string") throw new Error(`${name}: ${p}`);
  return { raw, p };
}

const answer = (name: string): ProxyAnswer => {
  const a = answerProxyDhcp(captured(name).p, "dhcp", "0.0.0.0", settings);
  if (typeof a === "string") throw new Error(`${name} ignored: ${a}`);
  return a;
};

describe("DHCP requests captured from real clients", () => {
  it("OVMF PXE DISCOVER (PXEClient:Arch:00007:UNDI:003000, option 93 = 7, UUID in 97) → snponly.efi, UUID echoed, no address", () => {
    const { p } = captured("ovmf-pxe-discover");
    expect(p.options.get(60)?.toString()).toBe("PXEClient:Arch:00007:UNDI:003000");
    expect(p.options.has(77)).toBe(false);
    const a = answer("ovmf-pxe-discover");
    expect(a).toMatchObject({ to: "broadcast", bootFile: "snponly.efi" });
    expect(a.reply.yiaddr).toBe("0.0.0.0");
    expect(a.reply.options.get(97)).toEqual(p.options.get(97));
    expect(a.reply.xid).toBe(p.xid);
  });

  it("OVMF UEFI HTTP boot DISCOVER (HTTPClient, arch 16) → URL of /ipxe/snponly.efi with HTTPClient echoed", () => {
    expect(captured("ovmf-http-discover").p.options.get(60)?.toString()).toMatch(/^HTTPClient:Arch:00016/);
    const a = answer("ovmf-http-discover");
    expect(a.bootFile).toBe("http://10.77.0.1:8080/ipxe/snponly.efi");
    expect(a.reply.options.get(60)?.toString()).toBe("HTTPClient");
  });

  it("iPXE on SeaBIOS (user-class iPXE, arch 0) → /boot.ipxe; its REQUEST names the site's server → not ours", () => {
    expect(answer("ipxe-bios-discover").bootFile).toBe("http://10.77.0.1:8080/boot.ipxe");
    expect(answerProxyDhcp(captured("ipxe-bios-request").p, "dhcp", "0.0.0.0", settings)).toBe("for-another-server");
  });

  it("each captured request survives decode → encode → decode unchanged in every option", () => {
    for (const name of ["ovmf-pxe-discover", "ovmf-http-discover", "ipxe-bios-discover", "ipxe-bios-request"]) {
      const { p } = captured(name);
      const again = decodePacket(encodePacket(p));
      expect(typeof again === "string" ? again : [...again.options]).toEqual([...p.options]);
    }
  });
});
