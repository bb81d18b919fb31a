/**
 * DHCP packets captured in the QEMU lab (test/lab/proxy-dhcp.test.ts; dnsmasq leasing addresses
 * only) replayed through the decision: OVMF's own PXE client, OVMF's UEFI HTTP boot entry, iPXE
 * from snponly.efi and QEMU's iPXE NIC ROM on SeaBIOS, each to the answer real clients need. The
 * offer edgejoin sent OVMF in that run (OVMF then fetched the file it names) is the reference.
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

  it("OVMF HTTP boot DISCOVER → the very answer OVMF took in the lab (it then GET the URL), byte for byte", () => {
    const took = readFileSync(new URL("../fixtures/dhcp/edgejoin-offer-to-ovmf-http.bin", import.meta.url));
    expect(encodePacket(answer("ovmf-http-discover").reply).equals(took)).toBe(true);
    const offer = decodePacket(took);
    if (typeof offer === "string") throw new Error(offer);
    // No option 43 and no TFTP server name: HTTP boot needs neither.
    expect([...offer.options.keys()]).toEqual([53, 54, 60, 97, 67]);
    expect(offer).toMatchObject({ yiaddr: "0.0.0.0", siaddr: "10.77.0.1", file: "http://10.77.0.1:8080/ipxe/snponly.efi" });
  });

  it("iPXE on SeaBIOS (user-class iPXE, arch 0) → /boot.ipxe; its REQUEST names the site's server → not ours", () => {
    expect(answer("ipxe-bios-discover").bootFile).toBe("http://10.77.0.1:8080/boot.ipxe");
    expect(answerProxyDhcp(captured("ipxe-bios-request").p, "dhcp", "0.0.0.0", settings)).toBe("for-another-server");
  });

  it("OVMF PXE DISCOVER → the very offer OVMF took in the lab, byte for byte (option 43 = discovery control 8, no 4011 exchange needed)", () => {
    const took = readFileSync(new URL("../fixtures/dhcp/edgejoin-offer-to-ovmf.bin", import.meta.url));
    expect(encodePacket(answer("ovmf-pxe-discover").reply).equals(took)).toBe(true);
    const offer = decodePacket(took);
    if (typeof offer === "string") throw new Error(offer);
    expect([...offer.options.keys()]).toEqual([53, 54, 60, 97, 43, 67, 66]);
    expect([...offer.options.get(43)!]).toEqual([6, 1, 8, 255]);
    expect(offer).toMatchObject({ yiaddr: "0.0.0.0", siaddr: "10.77.0.1", file: "snponly.efi", flags: 0x8000 });
  });

  it("OVMF's REQUEST to the site's server (option 54 = dnsmasq) on 67 → not ours; the same REQUEST on 4011 → ACK with snponly.efi to its source", () => {
    const { p } = captured("ovmf-pxe-request");
    expect([...(p.options.get(54) ?? [])].join(".")).toBe("10.77.0.2");
    expect(answerProxyDhcp(p, "dhcp", "0.0.0.0", settings)).toBe("for-another-server");
    // OVMF sent no 4011 REQUEST in the lab (the offer above needs none); one from its leased address is answered there.
    const ack = answerProxyDhcp({ ...p, ciaddr: "10.77.0.182" }, "pxe", "10.77.0.182", settings);
    expect(typeof ack === "string" ? ack : [ack.to, ack.bootFile, ack.reply.options.get(53)?.[0], ack.reply.yiaddr]).toEqual([
      "source",
      "snponly.efi",
      5,
      "0.0.0.0",
    ]);
  });

  it("OVMF's REQUEST to 4011 (captured with dnsmasq's pxe-service as the proxy) → ACK to its source port with what dnsmasq's ACK carried, plus the boot file", () => {
    // OVMF does this exchange only after an offer with a boot menu; edgejoin's offer needs none.
    const { p } = captured("ovmf-pxe-request-4011");
    expect([p.options.get(53)?.[0], p.ciaddr, p.options.get(60)?.toString()]).toEqual([3, "10.77.0.178", "PXEClient:Arch:00007:UNDI:003000"]);
    const a = answerProxyDhcp(p, "pxe", "10.77.0.178", settings);
    if (typeof a === "string") throw new Error(`ignored: ${a}`);
    expect(a.to).toBe("source");
    const dnsmasq = decodePacket(readFileSync(new URL("../fixtures/dhcp/dnsmasq-ack-4011-to-ovmf.bin", import.meta.url)));
    if (typeof dnsmasq === "string") throw new Error(dnsmasq);
    const ours = decodePacket(encodePacket(a.reply));
    if (typeof ours === "string") throw new Error(ours);
    const shape = (x: typeof ours) => ({ op: x.op, xid: x.xid, ciaddr: x.ciaddr, yiaddr: x.yiaddr, siaddr: x.siaddr, file: x.file, flags: x.flags });
    expect(shape(ours)).toEqual(shape(dnsmasq));
    for (const code of [53, 54, 60, 97]) expect(ours.options.get(code), `option ${code}`).toEqual(dnsmasq.options.get(code));
    expect(ours.options.get(67)?.toString()).toBe("snponly.efi");
  });

  it("iPXE from snponly.efi (PXEClient:Arch:00007:UNDI:003010, user-class iPXE) → /boot.ipxe over HTTP, no TFTP next-server", () => {
    const { p } = captured("ipxe-efi-discover");
    expect(p.options.get(60)?.toString()).toBe("PXEClient:Arch:00007:UNDI:003010");
    const a = answer("ipxe-efi-discover");
    expect(a.bootFile).toBe("http://10.77.0.1:8080/boot.ipxe");
    expect(a.reply.options.has(66)).toBe(false);
    expect(a.reply.options.get(67)?.at(-1)).not.toBe(0);
  });

  it("each captured request survives decode → encode → decode unchanged in every option", () => {
    for (const name of [
      "ovmf-pxe-discover",
      "ovmf-pxe-request",
      "ovmf-pxe-request-4011",
      "ovmf-http-discover",
      "ipxe-efi-discover",
      "ipxe-bios-discover",
      "ipxe-bios-request",
    ]) {
      const { p } = captured(name);
      const again = decodePacket(encodePacket(p));
      expect(typeof again === "string" ? again : [...again.options]).toEqual([...p.options]);
    }
  });
});
