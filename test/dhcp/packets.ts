/**
 * Hand-built DHCP requests as the PXE clients in NETBOOT-NOTES send them, written byte by byte
 * (not through server/dhcp/packet.ts) so the codec is tested against an independent encoder.
 */

/** OVMF's SMBIOS UUID in option 97: type 0, then 16 bytes. */
export const uuid97 = Buffer.from("00" + "8c2e5f0a1b3c4d5e9f00112233445566", "hex");
export const mac = "52:54:00:12:34:56";

type Raw = {
  op?: number;
  xid?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  options: [number, Buffer | string | number[]][];
  /** Leave out the END option (a truncated packet). */
  noEnd?: boolean;
};

const ip = (s: string) => Buffer.from(s.split(".").map(Number));

/** A BOOTREQUEST with these options, padded like real clients (to 300 bytes at least). */
export function rawPacket(r: Raw): Buffer {
  const head = Buffer.alloc(240);
  head[0] = r.op ?? 1;
  head[1] = 1;
  head[2] = 6;
  head.writeUInt32BE(r.xid ?? 0x1234abcd, 4);
  head.writeUInt16BE(4, 8);
  head.writeUInt16BE(r.flags ?? 0x8000, 10);
  ip(r.ciaddr ?? "0.0.0.0").copy(head, 12);
  ip(r.giaddr ?? "0.0.0.0").copy(head, 24);
  Buffer.from(mac.split(":").map((h) => Number.parseInt(h, 16))).copy(head, 28);
  head.writeUInt32BE(0x63825363, 236);
  const parts: Buffer[] = [head];
  for (const [code, value] of r.options) {
    const v = typeof value === "string" ? Buffer.from(value, "latin1") : Buffer.from(value);
    parts.push(Buffer.from([code, v.length]), v);
  }
  if (!r.noEnd) parts.push(Buffer.from([255]));
  const out = Buffer.concat(parts);
  return out.length >= 300 || r.noEnd ? out : Buffer.concat([out, Buffer.alloc(300 - out.length)]);
}

const paramList = [
  1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135,
];

/** OVMF's own PXE client (x86-64 UEFI), DISCOVER broadcast to 67 or REQUEST to 4011. */
export function ovmf(type: 1 | 3, extra: { ciaddr?: string } = {}): Buffer {
  return rawPacket({
    ciaddr: extra.ciaddr,
    flags: type === 1 ? 0x8000 : 0,
    options: [
      [53, [type]],
      [57, [0x05, 0xc0]],
      [55, paramList],
      [97, uuid97],
      [94, [1, 3, 0]],
      [93, [0, 7]],
      [60, "PXEClient:Arch:00007:UNDI:003000"],
    ],
  });
}

/** A BIOS machine's firmware PXE (not iPXE): arch 0, UNDI 2.1. */
export function biosFirmware(): Buffer {
  return rawPacket({
    options: [
      [53, [1]],
      [57, [0x04, 0xec]],
      [55, paramList],
      [97, uuid97],
      [94, [1, 2, 1]],
      [93, [0, 0]],
      [60, "PXEClient:Arch:00000:UNDI:002001"],
    ],
  });
}

/** iPXE (BIOS, QEMU's NIC ROM or undionly.kpxe): user-class iPXE, DISCOVER or REQUEST to 4011. */
export function ipxe(type: 1 | 3, extra: { ciaddr?: string } = {}): Buffer {
  return rawPacket({
    ciaddr: extra.ciaddr,
    flags: 0,
    options: [
      [53, [type]],
      [57, [0x05, 0xdc]],
      [93, [0, 0]],
      [94, [1, 2, 1]],
      [60, "PXEClient:Arch:00000:UNDI:002001"],
      [77, "iPXE"],
      [55, [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203]],
      // iPXE's own encapsulated feature list (175): kept opaque by the codec.
      [175, [0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, 0xeb, 0x03, 0x01, 0x00, 0x00, 0x17, 0x01, 0x01]],
      [61, [1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]],
      [97, uuid97],
    ],
  });
}

/** UEFI HTTP boot (OVMF's "UEFI HTTPv4" entry): vendor class HTTPClient, arch 16. */
export function httpClient(): Buffer {
  return rawPacket({
    options: [
      [53, [1]],
      [55, paramList],
      [97, uuid97],
      [94, [1, 3, 0]],
      [93, [0, 16]],
      [60, "HTTPClient:Arch:00016:UNDI:003000"],
    ],
  });
}

/** Options of an encoded reply read straight from its bytes (code → raw value), independent of the codec. */
export function rawOptions(reply: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 240;
  while (i < reply.length && reply[i] !== 255) {
    if (reply[i] === 0) {
      i++;
      continue;
    }
    out.set(reply[i]!, reply.subarray(i + 2, i + 2 + reply[i + 1]!));
    i += 2 + reply[i + 1]!;
  }
  return out;
}
