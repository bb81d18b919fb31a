/**
 * ProxyDHCP decision (PXE spec 2.1 §2.2.5; what dnsmasq's proxy mode does): a PXE client's
 * DISCOVER or REQUEST in, boot information out, never an address (yiaddr stays 0.0.0.0) so the
 * site's own DHCP server keeps leasing. Pure: no socket, no clock, no file system.
 */
import { type DhcpPacket, MessageType } from "./packet.js";

/** The iPXE binary a UEFI x86-64 client is given. */
export type UefiBinary = "snponly.efi" | "ipxe.efi";

/** An address of this host and the subnet it serves, e.g. 10.0.0.5 in 10.0.0.0/24. */
export type Subnet = { address: string; prefix: number };

/** What the decision needs to know about this edgejoin. */
export type ProxySettings = {
  /** Base URL machines use (http://host:port), for `/boot.ipxe` and `/ipxe/<binary>`. */
  publicUrl: string;
  /** Subnets answered on; a request from anywhere else is ignored. */
  subnets: readonly Subnet[];
  /** Our address used when a broadcast does not say which subnet it came from. */
  defaultAddress: string;
  uefiBinary: UefiBinary;
  /** The arm64 UEFI iPXE binary's name when the boot folder has one. */
  arm64Binary: string | undefined;
};

/** The answer to send, and where: `broadcast` to the client port, or back to the request's source. */
export type ProxyAnswer = { reply: DhcpPacket; to: "broadcast" | "source" | "relay"; relay?: string; bootFile: string };

/** Why a well-formed packet got no answer (not an error: most DHCP traffic is not ours). */
export type Ignored = "not-a-request" | "not-pxe" | "message-type" | "for-another-server" | "other-subnet" | "unsupported-arch" | "no-arm64-binary";

/** The arm64 UEFI binary edgejoin looks for in the boot folder (Debian ships none). */
export const ARM64_BINARY = "ipxe-arm64.efi";

function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

/** True when `ip` lies in `subnet`. */
export function inSubnet(ip: string, subnet: Subnet): boolean {
  const mask = subnet.prefix === 0 ? 0 : (0xffffffff << (32 - subnet.prefix)) >>> 0;
  return (ipToInt(ip) & mask) >>> 0 === (ipToInt(subnet.address) & mask) >>> 0;
}

/** Client architecture (option 93, RFC 4578): first 2-byte type; else the `Arch:NNNNN` in the vendor class; else BIOS. */
export function clientArch(p: DhcpPacket, vendorClass: string): number {
  const o93 = p.options.get(93);
  if (o93 && o93.length >= 2) return o93.readUInt16BE(0);
  const m = /:Arch:(\d{5})/.exec(vendorClass);
  return m ? Number(m[1]) : 0;
}

/** iPXE sends user-class (77) `iPXE` raw; RFC 3004 clients length-prefix it: both contain the bytes. */
export function isIpxe(p: DhcpPacket): boolean {
  return p.options.get(77)?.includes("iPXE") ?? false;
}

/** Which binary a firmware client of this architecture boots (RFC 4578 / IANA processor types). */
function binaryFor(arch: number, s: ProxySettings): string | Ignored {
  switch (arch) {
    case 0: // x86 BIOS
      return "undionly.kpxe";
    case 7: // x64 UEFI
    case 9: // also x64 UEFI (EFI byte code number, sent by some x64 firmware)
    case 16: // x64 UEFI HTTP boot
      return s.uefiBinary;
    case 11: // arm64 UEFI
    case 19: // arm64 UEFI HTTP boot
      return s.arm64Binary ?? "no-arm64-binary";
    default:
      return "unsupported-arch";
  }
}

/**
 * The subnet a request belongs to: a relay's giaddr, else the client's own address (ciaddr, or the
 * source of a 4011 unicast). A broadcast from 0.0.0.0 says nothing: the default address answers.
 */
function ourAddress(p: DhcpPacket, source: string, s: ProxySettings): string | undefined {
  const from = [p.giaddr, p.ciaddr, source].find((a) => a !== "0.0.0.0");
  if (from === undefined) return s.defaultAddress;
  return s.subnets.find((n) => inSubnet(from, n))?.address;
}

/**
 * Answer one packet that arrived on `port` ("dhcp" = 67, "pxe" = 4011) from `source`.
 * On 67 a DISCOVER gets a ProxyDHCP OFFER; on 4011 a REQUEST gets an ACK sent back to the
 * request's source address and port (iPXE sends from 68, OVMF from 4011).
 */
export function answerProxyDhcp(p: DhcpPacket, port: "dhcp" | "pxe", source: string, s: ProxySettings): ProxyAnswer | Ignored {
  if (p.op !== 1) return "not-a-request";
  const type = p.options.get(53)?.[0];
  const vendorClass = p.options.get(60)?.toString("latin1") ?? "";
  const http = vendorClass.startsWith("HTTPClient");
  if (!http && !vendorClass.startsWith("PXEClient")) return "not-pxe";

  let replyType: number;
  if (port === "dhcp") {
    if (type === MessageType.DISCOVER) replyType = MessageType.OFFER;
    else if (type === MessageType.REQUEST) {
      // A broadcast REQUEST names the server whose offer it took: only ours is answered.
      const serverId = [...(p.options.get(54) ?? [])].join(".");
      if (!s.subnets.some((n) => n.address === serverId)) return "for-another-server";
      replyType = MessageType.ACK;
    } else return "message-type";
  } else if (type === MessageType.REQUEST || type === MessageType.INFORM || type === MessageType.DISCOVER) replyType = MessageType.ACK;
  else return "message-type";

  const address = ourAddress(p, source, s);
  if (address === undefined) return "other-subnet";

  const arch = clientArch(p, vendorClass);
  const binary = binaryFor(arch, s);
  if (!isIpxe(p) && (binary === "unsupported-arch" || binary === "no-arm64-binary")) return binary;
  // iPXE (any arch) chains to HTTP; UEFI HTTP boot fetches an iPXE binary over HTTP; firmware PXE over TFTP.
  const bootFile = isIpxe(p) ? `${s.publicUrl}/boot.ipxe` : http ? `${s.publicUrl}/ipxe/${binary}` : (binary as string);

  const options = new Map<number, Buffer>();
  options.set(53, Buffer.from([replyType]));
  options.set(54, Buffer.from(address.split(".").map(Number)));
  // UEFI HTTP boot only takes an offer that echoes HTTPClient; PXE ROMs only one that says PXEClient.
  options.set(60, Buffer.from(http ? "HTTPClient" : "PXEClient", "latin1"));
  const uuid = p.options.get(97);
  if (uuid) options.set(97, uuid);
  // PXE discovery control (sub-option 6) = 8: boot the file named here from siaddr, no boot
  // server discovery or multicast. The menu-less form real PXE ROMs accept from dnsmasq.
  if (!http) options.set(43, Buffer.from([6, 1, 8, 255]));
  // Option 67 without a trailing NUL: iPXE keeps a NUL in ${filename} (dnsmasq's habit).
  options.set(67, Buffer.from(bootFile, "latin1"));
  if (!http && !isIpxe(p)) options.set(66, Buffer.from(address, "latin1"));

  const reply: DhcpPacket = {
    op: 2,
    htype: p.htype,
    hlen: p.hlen,
    hops: 0,
    xid: p.xid,
    secs: 0,
    flags: p.flags,
    ciaddr: port === "pxe" ? p.ciaddr : "0.0.0.0",
    yiaddr: "0.0.0.0",
    siaddr: address,
    giaddr: p.giaddr,
    chaddr: p.chaddr,
    sname: "",
    // PXE ROMs read the BOOTP file field; long URLs (iPXE reads option 67) do not fit in it.
    file: Buffer.byteLength(bootFile, "latin1") <= 127 ? bootFile : "",
    options,
  };
  if (port === "pxe") return { reply, to: "source", bootFile };
  if (p.giaddr !== "0.0.0.0") return { reply, to: "relay", relay: p.giaddr, bootFile };
  return { reply, to: "broadcast", bootFile };
}
