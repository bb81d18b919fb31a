/**
 * The real ProxyDHCP listener on loopback high ports, real UDP packets: OVMF's 4011 REQUEST from
 * port 4011, iPXE's from another port on 127.0.0.2, a DISCOVER answered to the (test's)
 * broadcast address, and garbage that is counted and survived. Never touches port 67.
 */
import { createSocket, type Socket } from "node:dgram";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { decodePacket, type DhcpPacket } from "../../server/dhcp/packet.js";
import { startProxyDhcp, type ProxyDhcpOutcome, type ProxyDhcpServer } from "../../server/dhcp/server.js";
import { createMetrics } from "../../server/metrics/registry.js";
import { freeUdpPort } from "../helpers/ports.js";
import { ipxe, ovmf, rawOptions, rawPacket } from "./packets.js";

const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function client(address: string, port = 0): Promise<Socket & { next(ms?: number): Promise<{ packet: DhcpPacket; raw: Buffer; from: number }> }> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(port, address, () => resolve());
  });
  const queue: { raw: Buffer; from: number }[] = [];
  const waiting: ((m: { raw: Buffer; from: number }) => void)[] = [];
  s.on("message", (raw, rinfo) => {
    const w = waiting.shift();
    if (w) w({ raw, from: rinfo.port });
    else queue.push({ raw, from: rinfo.port });
  });
  const sock = s as Socket & { next(ms?: number): Promise<{ packet: DhcpPacket; raw: Buffer; from: number }> };
  sock.next = (ms = 2000) =>
    new Promise((resolve, reject) => {
      const deliver = (m: { raw: Buffer; from: number }) => {
        clearTimeout(timer);
        const packet = decodePacket(m.raw);
        if (typeof packet === "string") reject(new Error(`reply did not decode: ${packet}`));
        else resolve({ packet, raw: m.raw, from: m.from });
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(deliver), 1);
        reject(new Error(`no reply within ${ms} ms`));
      }, ms);
      const queued = queue.shift();
      if (queued) deliver(queued);
      else waiting.push(deliver);
    });
  opened.push({ close: () => new Promise<void>((r) => s.close(() => r())) });
  return sock;
}

async function start(broadcastTo: { address: string; port: number }, onPacket?: (o: ProxyDhcpOutcome) => void): Promise<ProxyDhcpServer> {
  const server = await startProxyDhcp({
    host: "127.0.0.1",
    dhcpPort: await freeUdpPort(),
    pxePort: await freeUdpPort(),
    clientPort: broadcastTo.port,
    broadcastAddress: broadcastTo.address,
    settings: () => ({
      publicUrl: "http://127.0.0.1:8080",
      subnets: [{ address: "127.0.0.1", prefix: 8 }],
      defaultAddress: "127.0.0.1",
      uefiBinary: "snponly.efi",
      arm64Binary: undefined,
    }),
    logger: pino({ level: "silent" }),
    onPacket,
  });
  opened.push(server);
  return server;
}

const send = (s: Socket, buf: Buffer, port: number) =>
  new Promise<void>((resolve, reject) => s.send(buf, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));

describe("ProxyDHCP listener over real UDP on loopback", () => {
  it("OVMF REQUEST from its port 4011 stand-in on 127.0.0.2 → ACK to that address and port; iPXE's from 127.0.0.1 → to its port", async () => {
    const broadcast = await client("127.0.0.1");
    const server = await start({ address: "127.0.0.1", port: broadcast.address().port });
    const fw = await client("127.0.0.2");
    await send(fw, ovmf(3, { ciaddr: "127.0.0.2" }), server.pxePort);
    const ack = await fw.next();
    expect(ack.from).toBe(server.pxePort);
    expect(ack.packet).toMatchObject({ op: 2, yiaddr: "0.0.0.0", siaddr: "127.0.0.1", ciaddr: "127.0.0.2", file: "snponly.efi" });
    expect(rawOptions(ack.raw).get(67)!.toString()).toBe("snponly.efi");

    const ipxeClient = await client("127.0.0.1");
    await send(ipxeClient, ipxe(3, { ciaddr: "127.0.0.1" }), server.pxePort);
    const ipxeAck = await ipxeClient.next();
    expect(rawOptions(ipxeAck.raw).get(67)!.toString()).toBe("http://127.0.0.1:8080/boot.ipxe");
    expect(server.stats()).toMatchObject({ received: 2, answered: 2, malformed: 0 });
  });

  it("a DISCOVER on the DHCP port → OFFER sent to the broadcast address and client port", async () => {
    const broadcast = await client("127.0.0.1");
    const server = await start({ address: "127.0.0.1", port: broadcast.address().port });
    const fw = await client("127.0.0.1");
    await send(fw, ovmf(1), server.dhcpPort);
    const offer = await broadcast.next();
    expect(offer.from).toBe(server.dhcpPort);
    expect([...offer.packet.options.get(53)!]).toEqual([2]);
    expect(offer.packet.yiaddr).toBe("0.0.0.0");
  });

  it("garbage, truncated and oversized packets → dropped and counted; the listener still answers afterwards", async () => {
    const broadcast = await client("127.0.0.1");
    const server = await start({ address: "127.0.0.1", port: broadcast.address().port });
    const junk = await client("127.0.0.2");
    const bad = [Buffer.alloc(0), Buffer.from("hello"), ovmf(1).subarray(0, 250), Buffer.alloc(1400, 0xff), Buffer.alloc(4000, 1)];
    for (const b of bad) await send(junk, b, server.pxePort);
    await send(junk, Buffer.from("x"), server.dhcpPort);
    // A laptop's ordinary DISCOVER: well formed, not ours.
    await send(junk, ovmf(1).fill(0, 240).fill(255, 240, 241), server.dhcpPort);
    await send(junk, ovmf(3, { ciaddr: "127.0.0.2" }), server.pxePort);
    const ack = await junk.next();
    expect(ack.packet.file).toBe("snponly.efi");
    expect(server.stats()).toEqual({ received: 8, answered: 1, ignored: 1, malformed: 6, failed: 0 });
  });

  it("answered, ignored (not PXE) and malformed packets from 127.0.0.1 and 127.0.0.2 → counted per port and message type in /metrics' registry", async () => {
    const metrics = createMetrics();
    const broadcast = await client("127.0.0.1");
    const server = await start({ address: "127.0.0.1", port: broadcast.address().port }, (o) => metrics.proxyDhcpPacket(o));
    const fw = await client("127.0.0.2");
    await send(fw, ovmf(3, { ciaddr: "127.0.0.2" }), server.pxePort);
    await fw.next();
    const laptop = await client("127.0.0.1");
    await send(laptop, ovmf(1), server.dhcpPort);
    await broadcast.next();
    // An ordinary DHCP client's DISCOVER: no vendor class PXEClient.
    await send(
      laptop,
      rawPacket({
        options: [
          [53, [1]],
          [60, "MSFT 5.0"],
        ],
      }),
      server.dhcpPort,
    );
    await send(fw, Buffer.from("not dhcp"), server.dhcpPort);
    await send(fw, ovmf(1).subarray(0, 250), server.pxePort);
    await waitForCount(() => server.stats().received, 5);

    const text = await metrics.registry.metrics();
    const counted = (labels: string) => new RegExp(`^edgejoin_proxy_dhcp_packets_total\\{${labels}\\} (\\d+)$`, "m").exec(text)?.[1];
    expect(counted('port="pxe",type="request",result="answered",reason="none"')).toBe("1");
    expect(counted('port="dhcp",type="discover",result="answered",reason="none"')).toBe("1");
    expect(counted('port="dhcp",type="discover",result="ignored",reason="not-pxe"')).toBe("1");
    expect(counted('port="dhcp",type="none",result="malformed",reason="too-short"')).toBe("1");
    expect(counted('port="pxe",type="none",result="malformed",reason="bad-option"')).toBe("1");
    expect(server.stats()).toEqual({ received: 5, answered: 2, ignored: 1, malformed: 2, failed: 0 });
  });
});

/** Wait (at most 2 s) until `read()` reaches `n`: UDP gives no delivery receipt for dropped packets. */
async function waitForCount(read: () => number, n: number): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (read() < n) {
    if (Date.now() > deadline) throw new Error(`counted ${read()} packets, expected ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
