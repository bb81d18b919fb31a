/**
 * DHCPv4/BOOTP packet codec (RFC 2131 header, RFC 2132 options, RFC 3396 split options): bytes ↔
 * a plain record whose options stay raw bytes, so PXE's own options (43, 60, 77, 93, 94, 97) pass
 * through untouched. Written here because the npm DHCP packages tie their codec to a socket-owning
 * server (`dhcp`), are unmaintained since ~2016 (`dhcpjs`) or parse only (`net-dhcp`).
 */

/** Smallest valid packet: the 236-byte BOOTP header plus the 4-byte magic cookie. */
export const MIN_PACKET = 240;
/** Largest packet accepted: far above any PXE client's (they stay under 576 + a few options). */
export const MAX_PACKET = 1500;
const COOKIE = 0x63825363;

/** DHCP message types (option 53) edgejoin reads or writes. */
export const MessageType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, ACK: 5, INFORM: 8 } as const;

/** A decoded packet. Addresses are dotted quads; options keep their first-seen order. */
export type DhcpPacket = {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of chaddr (only the first hlen are the hardware address). */
  chaddr: Buffer;
  sname: string;
  file: string;
  options: Map<number, Buffer>;
};

/** Why bytes were not a DHCP packet. */
export type DecodeError = "too-short" | "too-long" | "bad-cookie" | "bad-option" | "not-bootp";

function ipAt(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** A NUL-padded fixed field as text (up to the first NUL). */
function textAt(buf: Buffer, at: number, len: number): string {
  const field = buf.subarray(at, at + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? len : nul).toString("latin1");
}

/**
 * Parse one UDP payload. Repeated options are concatenated (RFC 3396). Option overload (52) is
 * not followed: PXE clients do not send it, and a reply never needs it.
 */
export function decodePacket(buf: Buffer): DhcpPacket | DecodeError {
  if (buf.length < MIN_PACKET) return "too-short";
  if (buf.length > MAX_PACKET) return "too-long";
  if (buf[0] !== 1 && buf[0] !== 2) return "not-bootp";
  if (buf[2]! > 16) return "not-bootp";
  if (buf.readUInt32BE(236) !== COOKIE) return "bad-cookie";
  const options = new Map<number, Buffer>();
  let i = 240;
  let ended = false;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) {
      ended = true;
      break;
    }
    if (i + 1 >= buf.length) return "bad-option";
    const len = buf[i + 1]!;
    if (i + 2 + len > buf.length) return "bad-option";
    const value = buf.subarray(i + 2, i + 2 + len);
    const before = options.get(code);
    options.set(code, before ? Buffer.concat([before, value]) : Buffer.from(value));
    i += 2 + len;
  }
  // A packet cut off before its END option is a truncated one, not a short list.
  if (!ended) return "bad-option";
  return {
    op: buf[0]!,
    htype: buf[1]!,
    hlen: buf[2]!,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipAt(buf, 12),
    yiaddr: ipAt(buf, 16),
    siaddr: ipAt(buf, 20),
    giaddr: ipAt(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname: textAt(buf, 44, 64),
    file: textAt(buf, 108, 128),
    options,
  };
}

function writeIp(buf: Buffer, at: number, ip: string): void {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  parts.forEach((p, k) => {
    buf[at + k] = p;
  });
}

/** Serialize a packet. Options longer than 255 bytes are split into several (RFC 3396). */
export function encodePacket(p: DhcpPacket): Buffer {
  const head = Buffer.alloc(240);
  head[0] = p.op;
  head[1] = p.htype;
  head[2] = p.hlen;
  head[3] = p.hops;
  head.writeUInt32BE(p.xid >>> 0, 4);
  head.writeUInt16BE(p.secs, 8);
  head.writeUInt16BE(p.flags, 10);
  writeIp(head, 12, p.ciaddr);
  writeIp(head, 16, p.yiaddr);
  writeIp(head, 20, p.siaddr);
  writeIp(head, 24, p.giaddr);
  p.chaddr.copy(head, 28, 0, 16);
  if (Buffer.byteLength(p.sname, "latin1") > 63) throw new Error("sname longer than 63 bytes");
  if (Buffer.byteLength(p.file, "latin1") > 127) throw new Error("file longer than 127 bytes");
  head.write(p.sname, 44, "latin1");
  head.write(p.file, 108, "latin1");
  head.writeUInt32BE(COOKIE, 236);
  const parts: Buffer[] = [head];
  for (const [code, value] of p.options) {
    for (let at = 0; at === 0 || at < value.length; at += 255) {
      const chunk = value.subarray(at, at + 255);
      parts.push(Buffer.from([code, chunk.length]), chunk);
    }
  }
  parts.push(Buffer.from([255]));
  const out = Buffer.concat(parts);
  // Some old PXE ROMs drop BOOTP replies shorter than 300 bytes (RFC 1542's minimum): pad.
  return out.length >= 300 ? out : Buffer.concat([out, Buffer.alloc(300 - out.length)]);
}

/** The client hardware address as `aa:bb:cc:dd:ee:ff` (hlen bytes of chaddr). */
export function hardwareAddress(p: DhcpPacket): string {
  return [...p.chaddr.subarray(0, Math.min(p.hlen, 16))].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
