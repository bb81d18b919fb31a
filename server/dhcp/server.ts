/**
 * The ProxyDHCP listener: two UDP sockets (67 for broadcasts, 4011 for the PXE exchange) around the
 * pure decision in proxy.ts. Malformed packets are dropped and counted, never thrown.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { decodePacket, encodePacket, hardwareAddress } from "./packet.js";
import { answerProxyDhcp, type ProxySettings, type Subnet } from "./proxy.js";

/** The few log calls the listener makes; pino's logger fits. */
export type ProtocolLog = Record<"debug" | "info" | "warn" | "error", (details: object, message: string) => void>;

/** Counters the metrics exporter can read: every packet lands in exactly one of the last four. */
export type ProxyDhcpStats = { received: number; answered: number; ignored: number; malformed: number; failed: number };

/** How one packet ended, as `/metrics` counts it: `reason` says why it was ignored or dropped. */
export type ProxyDhcpOutcome = {
  port: "dhcp" | "pxe";
  /** DHCP message type (option 53) by name; `none` when the packet did not decode or had none. */
  type: string;
  result: "answered" | "ignored" | "malformed" | "failed";
  reason: string;
};

const messageTypes = ["none", "discover", "offer", "request", "decline", "ack", "nak", "release", "inform"];

/** What main (or a test) hands to `startProxyDhcp`. Ports and the broadcast address are settable for loopback tests. */
export type ProxyDhcpOptions = {
  host: string;
  dhcpPort: number;
  pxePort: number;
  /** Where broadcast replies go: 68 and 255.255.255.255 on a real network. */
  clientPort: number;
  broadcastAddress: string;
  /**
   * Current settings, asked per packet (main caches them briefly): interfaces come and go, and a
   * bridge without a running port has no usable address yet. A string says why nothing is answered now.
   */
  settings: () => ProxySettings | string;
  logger: ProtocolLog;
  /** Told how every packet ended (main counts them for `/metrics`). */
  onPacket?: (outcome: ProxyDhcpOutcome) => void;
};

/** A running ProxyDHCP listener. */
export type ProxyDhcpServer = { dhcpPort: number; pxePort: number; stats(): ProxyDhcpStats; close(): Promise<void> };

function bind(socket: Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
}

/** The broadcast address of the subnet `address` belongs to (10.0.0.5 in /24 → 10.0.0.255). */
export function directedBroadcast(address: string, subnets: readonly Subnet[]): string | undefined {
  const subnet = subnets.find((n) => n.address === address);
  if (!subnet || subnet.prefix >= 31) return undefined;
  const ip = address.split(".").reduce((n, part) => n * 256 + Number(part), 0);
  const host = 2 ** (32 - subnet.prefix) - 1;
  const b = ip - (ip % (host + 1)) + host;
  return [24, 16, 8, 0].map((shift) => Math.floor(b / 2 ** shift) % 256).join(".");
}

/** Bind both sockets and answer PXE clients until closed. */
export async function startProxyDhcp(opts: ProxyDhcpOptions): Promise<ProxyDhcpServer> {
  const stats: ProxyDhcpStats = { received: 0, answered: 0, ignored: 0, malformed: 0, failed: 0 };
  // reuseAddr: the per-address sockets below bind address:67 next to this 0.0.0.0:67 one.
  const dhcp = createSocket({ type: "udp4", reuseAddr: true });
  /**
   * One socket per answering address, bound to address:67. Linux routes a 255.255.255.255 send
   * out of the interface that owns the source address (even with no default route), which a
   * 0.0.0.0 socket cannot do: Node has no IP_PKTINFO. OVMF takes offers only at 255.255.255.255.
   */
  const senders = new Map<string, Promise<Socket | undefined>>();
  const senderFor = (address: string): Promise<Socket | undefined> => {
    if (address === opts.host) return Promise.resolve(dhcp);
    let found = senders.get(address);
    if (!found) {
      const s = createSocket({ type: "udp4", reuseAddr: true });
      s.on("message", handle(s, "dhcp"));
      s.on("error", (err) => opts.logger.warn({ err }, "ProxyDHCP socket error"));
      found = bind(s, address, opts.dhcpPort).then(
        () => {
          s.setBroadcast(true);
          return s;
        },
        (err) => {
          opts.logger.warn({ err, address }, "cannot bind a ProxyDHCP reply socket; broadcasting from 0.0.0.0");
          return undefined;
        },
      );
      senders.set(address, found);
    }
    return found;
  };
  const pxe = createSocket({ type: "udp4", reuseAddr: false });

  const handle = (socket: Socket, port: "dhcp" | "pxe") => (msg: Buffer, rinfo: RemoteInfo) => {
    stats.received++;
    let type = "none";
    const outcome = (result: ProxyDhcpOutcome["result"], reason: string) => {
      stats[result]++;
      try {
        opts.onPacket?.({ port, type, result, reason });
      } catch (err) {
        opts.logger.warn({ err }, "ProxyDHCP packet counter failed");
      }
    };
    try {
      const packet = decodePacket(msg);
      if (typeof packet === "string") {
        outcome("malformed", packet);
        opts.logger.debug({ from: rinfo.address, bytes: msg.length, reason: packet }, "dropped a malformed DHCP packet");
        return;
      }
      const code = packet.options.get(53)?.[0];
      type = code === undefined ? "none" : (messageTypes[code] ?? "other");
      const settings = opts.settings();
      if (typeof settings === "string") {
        outcome("ignored", "not-ready");
        opts.logger.debug({ mac: hardwareAddress(packet), reason: settings }, "ProxyDHCP cannot answer yet");
        return;
      }
      const answer = answerProxyDhcp(packet, port, rinfo.address, settings);
      if (typeof answer === "string") {
        outcome("ignored", answer);
        if (answer !== "not-pxe" && answer !== "for-another-server") {
          opts.logger.debug({ mac: hardwareAddress(packet), from: rinfo.address, reason: answer }, "ProxyDHCP did not answer");
        }
        return;
      }
      const bytes = encodePacket(answer.reply);
      const [address, toPort] =
        answer.to === "source"
          ? [rinfo.address, rinfo.port]
          : answer.to === "relay"
            ? [answer.relay!, opts.dhcpPort]
            : [opts.broadcastAddress, opts.clientPort];
      const send = (from: Socket) =>
        from.send(bytes, toPort, address, (err) => {
          if (err) {
            stats.failed++;
            opts.logger.warn({ err, to: address }, "ProxyDHCP reply not sent");
          }
        });
      if (answer.to === "broadcast") void senderFor(answer.reply.siaddr).then((from) => send(from ?? socket));
      else send(socket);
      // Node cannot pick the interface of a 255.255.255.255 send (no IP_PKTINFO): Linux sends it along
      // the default route, or fails without one. The subnet's own broadcast address leaves by the
      // right interface as an Ethernet broadcast, which clients without an address take too.
      const directed = answer.to === "broadcast" ? directedBroadcast(answer.reply.siaddr, settings.subnets) : undefined;
      if (directed && directed !== address) socket.send(bytes, toPort, directed, () => undefined);
      outcome("answered", "none");
      opts.logger.info(
        { mac: hardwareAddress(packet), from: rinfo.address, port: port === "dhcp" ? opts.dhcpPort : opts.pxePort, bootFile: answer.bootFile },
        "ProxyDHCP answered",
      );
    } catch (err) {
      // A decision or encoding bug must cost one packet, never the listener.
      outcome("failed", "exception");
      opts.logger.error({ err, from: rinfo.address }, "ProxyDHCP failed on a packet");
    }
  };

  for (const [socket, port] of [
    [dhcp, "dhcp"],
    [pxe, "pxe"],
  ] as const) {
    socket.on("message", handle(socket, port));
    socket.on("error", (err) => opts.logger.warn({ err }, "ProxyDHCP socket error"));
  }
  await bind(dhcp, opts.host, opts.dhcpPort);
  try {
    await bind(pxe, opts.host, opts.pxePort);
  } catch (err) {
    dhcp.close();
    throw err;
  }
  // Replies to clients without an address yet go to the broadcast address.
  dhcp.setBroadcast(true);
  pxe.setBroadcast(true);

  const close = (s: Socket) => new Promise<void>((resolve) => s.close(() => resolve()));
  return {
    dhcpPort: dhcp.address().port,
    pxePort: pxe.address().port,
    stats: () => ({ ...stats }),
    close: async () => {
      const extra = (await Promise.all(senders.values())).filter((x): x is Socket => x !== undefined && x !== dhcp);
      await Promise.all([close(dhcp), close(pxe), ...extra.map(close)]);
    },
  };
}
