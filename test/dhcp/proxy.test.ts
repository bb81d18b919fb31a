/**
 * ProxyDHCP decisions, packet level: DISCOVERs and REQUESTs as OVMF, BIOS firmware, iPXE and UEFI
 * HTTP boot send them → the exact answer (boot information only, never an address); garbage,
 * truncated and oversized packets → a decode error, never a throw.
 */
import { describe, expect, it } from "vitest";
import { decodePacket, encodePacket, type DhcpPacket } from "../../server/dhcp/packet.js";
import { answerProxyDhcp, type ProxyAnswer, type ProxySettings } from "../../server/dhcp/proxy.js";
import { defaultAddress, subnetsOf } from "../../server/dhcp/subnets.js";
import { biosFirmware, httpClient, ipxe, mac, ovmf, rawOptions, rawPacket, uuid97 } from "./packets.js";

const settings: ProxySettings = {
  publicUrl: "http://10.77.0.1:8080",
  subnets: [{ address: "10.77.0.1", prefix: 24 }],
  defaultAddress: "10.77.0.1",
  uefiBinary: "snponly.efi",
  arm64Binary: undefined,
};

function decoded(buf: Buffer): DhcpPacket {
  const p = decodePacket(buf);
  if (typeof p === "string") throw new Error(`test packet did not decode: ${p}`);
  return p;
}

function answer(buf: Buffer, port: "dhcp" | "pxe", source = "0.0.0.0", s: ProxySettings = settings): ProxyAnswer {
  const a = answerProxyDhcp(decoded(buf), port, source, s);
  if (typeof a === "string") throw new Error(`ignored: ${a}`);
  return a;
}

const text = (b: Buffer | undefined) => b?.toString("latin1");

describe("ProxyDHCP answers PXE clients with boot information only", () => {
  it("OVMF DISCOVER (PXEClient:Arch:00007) on 67 → OFFER broadcast: snponly.efi from siaddr, no address, PXE options", () => {
    const a = answer(ovmf(1), "dhcp");
    expect(a.to).toBe("broadcast");
    const bytes = encodePacket(a.reply);
    // Read the reply back from raw bytes, not through the codec.
    expect(bytes[0]).toBe(2);
    expect(bytes.readUInt32BE(4)).toBe(0x1234abcd);
    expect(bytes.readUInt16BE(10)).toBe(0x8000);
    expect([...bytes.subarray(16, 20)]).toEqual([0, 0, 0, 0]); // yiaddr: never an address
    expect([...bytes.subarray(20, 24)]).toEqual([10, 77, 0, 1]); // siaddr: the TFTP server
    expect(bytes.subarray(28, 34).toString("hex")).toBe(mac.replaceAll(":", ""));
    expect(bytes.subarray(108, 108 + 12).toString("latin1")).toBe("snponly.efi\0");
    const o = rawOptions(bytes);
    expect([...o.keys()]).toEqual([53, 54, 60, 97, 43, 67, 66]);
    expect([...o.get(53)!]).toEqual([2]);
    expect([...o.get(54)!]).toEqual([10, 77, 0, 1]);
    expect(text(o.get(60))).toBe("PXEClient");
    expect(o.get(97)).toEqual(uuid97);
    expect([...o.get(43)!]).toEqual([6, 1, 8, 255]);
    // No trailing NUL after the boot file name (dnsmasq's habit, which iPXE keeps in ${filename}).
    expect(o.get(67)!.toString("hex")).toBe(Buffer.from("snponly.efi").toString("hex"));
    expect(text(o.get(66))).toBe("10.77.0.1");
    expect(bytes.length).toBeGreaterThanOrEqual(300);
  });

  it("OVMF REQUEST to 4011 with its lease in ciaddr → ACK back to the source, ciaddr kept, still no yiaddr", () => {
    const a = answer(ovmf(3, { ciaddr: "10.77.0.50" }), "pxe", "10.77.0.50");
    expect(a.to).toBe("source");
    expect(a.reply).toMatchObject({ op: 2, ciaddr: "10.77.0.50", yiaddr: "0.0.0.0", siaddr: "10.77.0.1", file: "snponly.efi" });
    expect([...a.reply.options.get(53)!]).toEqual([5]);
    expect(a.reply.options.get(97)).toEqual(uuid97);
  });

  it("x86-64 UEFI with EDGEJOIN_IPXE_EFI=ipxe.efi → ipxe.efi; arch 9 is x86-64 UEFI too", () => {
    expect(answer(ovmf(1), "dhcp", "0.0.0.0", { ...settings, uefiBinary: "ipxe.efi" }).bootFile).toBe("ipxe.efi");
    const arch9 = decoded(ovmf(1));
    arch9.options.set(93, Buffer.from([0, 9]));
    const a = answerProxyDhcp(arch9, "dhcp", "0.0.0.0", settings);
    expect(typeof a === "string" ? a : a.bootFile).toBe("snponly.efi");
  });

  it("BIOS firmware PXE (Arch:00000, no user-class) → undionly.kpxe", () => {
    const a = answer(biosFirmware(), "dhcp");
    expect(a.bootFile).toBe("undionly.kpxe");
    expect(a.reply.file).toBe("undionly.kpxe");
  });

  it("iPXE (user-class iPXE) DISCOVER → the HTTP URL of /boot.ipxe, the loop breaker", () => {
    const a = answer(ipxe(1), "dhcp");
    expect(a.bootFile).toBe("http://10.77.0.1:8080/boot.ipxe");
    const o = rawOptions(encodePacket(a.reply));
    expect(text(o.get(67))).toBe("http://10.77.0.1:8080/boot.ipxe");
    expect(o.has(66)).toBe(false);
  });

  it("iPXE REQUEST to 4011 from port 68 → ACK to the request's source", () => {
    const a = answer(ipxe(3, { ciaddr: "10.77.0.61" }), "pxe", "10.77.0.61");
    expect(a).toMatchObject({ to: "source", bootFile: "http://10.77.0.1:8080/boot.ipxe" });
  });

  it("UEFI HTTP boot (HTTPClient, arch 16) → an HTTP URL to an iPXE EFI binary, HTTPClient echoed, no PXE option 43", () => {
    const a = answer(httpClient(), "dhcp");
    expect(a.bootFile).toBe("http://10.77.0.1:8080/ipxe/snponly.efi");
    const o = rawOptions(encodePacket(a.reply));
    expect(text(o.get(60))).toBe("HTTPClient");
    expect(o.has(43)).toBe(false);
    expect(text(o.get(67))).toBe("http://10.77.0.1:8080/ipxe/snponly.efi");
  });

  it("arm64 UEFI (arch 11) → its binary when the boot folder has one, else no answer", () => {
    const arm = decoded(ovmf(1));
    arm.options.set(93, Buffer.from([0, 11]));
    arm.options.set(60, Buffer.from("PXEClient:Arch:00011:UNDI:003000"));
    expect(answerProxyDhcp(arm, "dhcp", "0.0.0.0", settings)).toBe("no-arm64-binary");
    const a = answerProxyDhcp(arm, "dhcp", "0.0.0.0", { ...settings, arm64Binary: "ipxe-arm64.efi" });
    expect(typeof a === "string" ? a : a.bootFile).toBe("ipxe-arm64.efi");
  });

  it("without option 93 the architecture comes from the vendor class", () => {
    const p = decoded(ovmf(1));
    p.options.delete(93);
    const a = answerProxyDhcp(p, "dhcp", "0.0.0.0", settings);
    expect(typeof a === "string" ? a : a.bootFile).toBe("snponly.efi");
  });

  it("a relayed DISCOVER (giaddr set) → answered through the relay with the address of its subnet", () => {
    const a = answer(
      rawPacket({
        giaddr: "10.88.0.1",
        options: [
          [53, [1]],
          [93, [0, 7]],
          [60, "PXEClient:Arch:00007:UNDI:003000"],
        ],
      }),
      "dhcp",
      "10.88.0.1",
      {
        ...settings,
        subnets: [...settings.subnets, { address: "10.88.0.9", prefix: 16 }],
      },
    );
    expect(a).toMatchObject({ to: "relay", relay: "10.88.0.1" });
    expect(a.reply.siaddr).toBe("10.88.0.9");
  });
});

describe("ProxyDHCP stays out of everything else", () => {
  const ignored = (buf: Buffer, port: "dhcp" | "pxe", source = "0.0.0.0") => answerProxyDhcp(decoded(buf), port, source, settings);

  it("a laptop's DISCOVER (no PXEClient vendor class) → not answered", () => {
    expect(
      ignored(
        rawPacket({
          options: [
            [53, [1]],
            [60, "MSFT 5.0"],
          ],
        }),
        "dhcp",
      ),
    ).toBe("not-pxe");
    expect(ignored(rawPacket({ options: [[53, [1]]] }), "dhcp")).toBe("not-pxe");
  });

  it("a REQUEST on 67 for the site's DHCP server → not answered; one naming edgejoin → ACK", () => {
    const forRouter = rawPacket({
      options: [
        [53, [3]],
        [54, [10, 77, 0, 254]],
        [60, "PXEClient:Arch:00007:UNDI:003000"],
      ],
    });
    expect(ignored(forRouter, "dhcp")).toBe("for-another-server");
    const forUs = rawPacket({
      options: [
        [53, [3]],
        [54, [10, 77, 0, 1]],
        [60, "PXEClient:Arch:00007:UNDI:003000"],
      ],
    });
    const a = answerProxyDhcp(decoded(forUs), "dhcp", "0.0.0.0", settings);
    expect(typeof a === "string" ? a : [...a.reply.options.get(53)!]).toEqual([5]);
  });

  it("a 4011 request from outside the configured subnets → not answered", () => {
    expect(ignored(ovmf(3, { ciaddr: "192.168.9.9" }), "pxe", "192.168.9.9")).toBe("other-subnet");
  });

  it("replies (op 2), RELEASEs and 32-bit UEFI (arch 6) → not answered", () => {
    expect(
      ignored(
        rawPacket({
          op: 2,
          options: [
            [53, [2]],
            [60, "PXEClient"],
          ],
        }),
        "dhcp",
      ),
    ).toBe("not-a-request");
    expect(
      ignored(
        rawPacket({
          options: [
            [53, [7]],
            [60, "PXEClient"],
          ],
        }),
        "dhcp",
      ),
    ).toBe("message-type");
    expect(
      ignored(
        rawPacket({
          options: [
            [53, [1]],
            [93, [0, 6]],
            [60, "PXEClient:Arch:00006:UNDI:003000"],
          ],
        }),
        "dhcp",
      ),
    ).toBe("unsupported-arch");
  });
});

describe("DHCP codec: malformed input is a decode error, never a throw", () => {
  it("truncated, garbage, wrong cookie, oversized, no END option → named errors", () => {
    expect(decodePacket(Buffer.alloc(0))).toBe("too-short");
    expect(decodePacket(ovmf(1).subarray(0, 239))).toBe("too-short");
    expect(decodePacket(Buffer.alloc(2000, 1))).toBe("too-long");
    const cookie = Buffer.from(ovmf(1));
    cookie.writeUInt32BE(0xdeadbeef, 236);
    expect(decodePacket(cookie)).toBe("bad-cookie");
    expect(decodePacket(rawPacket({ options: [[53, [1]]], noEnd: true }))).toBe("bad-option");
    // An option whose length runs past the end of the packet.
    const overrun = Buffer.concat([ovmf(1).subarray(0, 240), Buffer.from([60, 200, 0x50])]);
    expect(decodePacket(overrun)).toBe("bad-option");
    const notBootp = Buffer.from(ovmf(1));
    notBootp[0] = 7;
    expect(decodePacket(notBootp)).toBe("not-bootp");
  });

  it("5000 random and bit-flipped packets → decoded or refused, and every decoded one is decided without a throw", () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const bases = [ovmf(1), ovmf(3, { ciaddr: "10.77.0.50" }), ipxe(1), httpClient(), biosFirmware()];
    let decodedCount = 0;
    for (let n = 0; n < 5000; n++) {
      let buf: Buffer;
      if (n % 2 === 0) {
        buf = Buffer.from(bases[n % bases.length]!);
        for (let k = 0; k < 1 + (rand() % 8); k++) buf[240 + (rand() % (buf.length - 240))] = rand() & 0xff;
      } else {
        buf = Buffer.alloc(rand() % 1600);
        for (let k = 0; k < buf.length; k++) buf[k] = rand() & 0xff;
      }
      const p = decodePacket(buf);
      if (typeof p === "string") continue;
      decodedCount++;
      const a = answerProxyDhcp(p, n % 3 === 0 ? "pxe" : "dhcp", "10.77.0.7", settings);
      if (typeof a !== "string") {
        expect(a.reply.yiaddr).toBe("0.0.0.0");
        expect(() => encodePacket(a.reply)).not.toThrow();
      }
    }
    expect(decodedCount).toBeGreaterThan(100);
  });

  it("an option split in two (RFC 3396) is joined; a 300-byte option is split again on encode", () => {
    const p = decoded(
      rawPacket({
        options: [
          [53, [1]],
          [60, "PXEClient:Arch:"],
          [60, "00007:UNDI:003000"],
        ],
      }),
    );
    expect(text(p.options.get(60))).toBe("PXEClient:Arch:00007:UNDI:003000");
    p.options.set(77, Buffer.alloc(300, 0x41));
    const again = decoded(encodePacket(p));
    expect(again.options.get(77)).toEqual(Buffer.alloc(300, 0x41));
  });
});

describe("subnets answered on", () => {
  const ifaces = {
    lo: [{ address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: true, cidr: "127.0.0.1/8" }],
    eth0: [{ address: "10.77.0.1", netmask: "255.255.255.0", family: "IPv4", mac: "52:54:00:00:00:01", internal: false, cidr: "10.77.0.1/24" }],
  } as const;

  it("unset → every non-loopback IPv4 interface; named → those; a missing name → a one-line reason", () => {
    expect(subnetsOf(undefined, ifaces as any)).toEqual([{ address: "10.77.0.1", prefix: 24 }]);
    expect(subnetsOf(["lo"], ifaces as any)).toEqual([{ address: "127.0.0.1", prefix: 8 }]);
    expect(subnetsOf(["eth9"], ifaces as any)).toMatch(/no interface eth9/);
    expect(
      defaultAddress("http://10.77.0.1:8080", [
        { address: "10.9.0.1", prefix: 24 },
        { address: "10.77.0.1", prefix: 24 },
      ]),
    ).toBe("10.77.0.1");
  });
});

describe("directed broadcast for replies to clients without an address", () => {
  it("the answering address's subnet broadcast; none for /31, /32 or an address not ours", async () => {
    const { directedBroadcast } = await import("../../server/dhcp/server.js");
    expect(directedBroadcast("10.77.0.1", [{ address: "10.77.0.1", prefix: 24 }])).toBe("10.77.0.255");
    expect(directedBroadcast("172.16.5.9", [{ address: "172.16.5.9", prefix: 12 }])).toBe("172.31.255.255");
    expect(directedBroadcast("10.0.0.1", [{ address: "10.0.0.1", prefix: 32 }])).toBeUndefined();
    expect(directedBroadcast("10.9.9.9", [{ address: "10.77.0.1", prefix: 24 }])).toBeUndefined();
  });
});
