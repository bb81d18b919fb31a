/**
 * The syslog receiver: one UDP socket, each datagram parsed and handed to `file` with its source
 * address (how a message is tied to a machine). Bad datagrams are dropped and counted.
 */
import { createSocket, type Socket } from "node:dgram";
import { parseSyslog, type SyslogMessage } from "./parse.js";

/** The few log calls the receiver makes; pino's logger fits. */
export type ReceiverLog = Record<"debug" | "warn" | "error", (details: object, message: string) => void>;

/** Counters the metrics exporter can read: every datagram lands in exactly one of the last five. */
export type SyslogStats = { received: number; filed: number; unmatched: number; malformed: number; limited: number; failed: number };

/** Lines per second one source may file; beyond it they are dropped before the database sees them. */
export const MAX_LINES_PER_SOURCE_PER_SECOND = 200;
/** Sources tracked at once for the limit; the table is cleared past it (a spoofed-address flood). */
const MAX_TRACKED_SOURCES = 10_000;

/** What main (or a test) hands to `startSyslogReceiver`. */
export type SyslogOptions = {
  host: string;
  port: number;
  /** Store the message under the machine at this address; false when no machine is known there. */
  file: (sourceIp: string, message: SyslogMessage) => boolean;
  logger: ReceiverLog;
  /** Milliseconds; tests pass a fixed clock. */
  now?: () => number;
};

/** A running receiver. */
export type SyslogReceiver = { port: number; stats(): SyslogStats; close(): Promise<void> };

/** Bind the socket and file messages until closed. */
export async function startSyslogReceiver(opts: SyslogOptions): Promise<SyslogReceiver> {
  const stats: SyslogStats = { received: 0, filed: 0, unmatched: 0, malformed: 0, limited: 0, failed: 0 };
  const now = opts.now ?? Date.now;
  const windows = new Map<string, { second: number; lines: number }>();
  const allowed = (source: string): boolean => {
    const second = Math.floor(now() / 1000);
    if (windows.size >= MAX_TRACKED_SOURCES) windows.clear();
    const w = windows.get(source);
    if (!w || w.second !== second) {
      windows.set(source, { second, lines: 1 });
      return true;
    }
    return ++w.lines <= MAX_LINES_PER_SOURCE_PER_SECOND;
  };
  const socket: Socket = createSocket({ type: "udp4" });
  socket.on("message", (datagram, rinfo) => {
    stats.received++;
    const message = parseSyslog(datagram);
    if (!message) {
      stats.malformed++;
      return;
    }
    if (!allowed(rinfo.address)) {
      stats.limited++;
      return;
    }
    try {
      if (opts.file(rinfo.address, message)) stats.filed++;
      else stats.unmatched++;
    } catch (err) {
      // A store failure (a locked database) costs this message, never the receiver.
      stats.failed++;
      opts.logger.error({ err, from: rinfo.address }, "could not file a syslog message");
    }
  });
  socket.on("error", (err) => opts.logger.warn({ err }, "syslog socket error"));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: opts.host, port: opts.port, exclusive: true }, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    stats: () => ({ ...stats }),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
