/** Shared set-up for the TFTP tests: a server on a free loopback port whose log lines they can read, and a raw client. */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { Writable } from "node:stream";
import pino from "pino";
import { startTftpServer, type TftpServer } from "../../server/tftp/server.js";
import { freeUdpPort } from "../helpers/ports.js";

/** The generated autoexec.ipxe the tests hand to the server. */
export const autoexec = Buffer.from("#!ipxe\nchain http://10.77.0.1:8080/boot.ipxe\n");

/** Log lines the server wrote, parsed. */
export type LogLine = { level: number; msg: string; [k: string]: unknown };

/** Start a server on a free loopback port with a logger whose lines the test can read. */
export async function startTestServer(bootDir: string, ipxeDir = "/usr/lib/ipxe"): Promise<{ server: TftpServer; port: number; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const logger = pino({ level: "debug" }, sink);
  // Another process may take the port between probe and bind: try a few.
  for (let attempt = 0; ; attempt++) {
    const port = await freeUdpPort();
    try {
      const server = await startTftpServer({
        host: "127.0.0.1",
        port,
        bootDir,
        ipxeDir,
        dynamicFile: (name) => (name === "autoexec.ipxe" ? autoexec : undefined),
        logger,
      });
      return { server, port: server.port, logs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 4) throw err;
    }
  }
}

/** A hand-driven TFTP client, for packets no real client sends. */
export class RawClient {
  private readonly socket: Socket = createSocket("udp4");
  private readonly queue: { message: Buffer; rinfo: RemoteInfo }[] = [];
  private waiter: (() => void) | undefined;

  static async open(): Promise<RawClient> {
    const c = new RawClient();
    c.socket.on("message", (message, rinfo) => {
      c.queue.push({ message, rinfo });
      c.waiter?.();
    });
    await new Promise<void>((resolve) => c.socket.bind(0, "127.0.0.1", () => resolve()));
    return c;
  }

  send(port: number, packet: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(packet, port, "127.0.0.1", (err) => (err ? reject(err) : resolve())));
  }

  /** The next packet, or undefined after `timeoutMs`. */
  async next(timeoutMs = 2_000): Promise<{ message: Buffer; rinfo: RemoteInfo } | undefined> {
    if (this.queue.length) return this.queue.shift();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.waiter = undefined;
    return this.queue.shift();
  }

  close(): void {
    this.socket.close();
  }
}

/** An RRQ packet with options. */
export function rrq(file: string, options: Record<string, string> = {}): Buffer {
  const parts = [file, "octet", ...Object.entries(options).flat()];
  return Buffer.concat([Buffer.from([0, 1]), ...parts.map((p) => Buffer.from(`${p}\0`, "latin1"))]);
}

/** An ACK packet. */
export function ack(block: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(4, 0);
  b.writeUInt16BE(block, 2);
  return b;
}

/** An ERROR packet. */
export function errorPacket(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([0, 5, 0, code]), Buffer.from(`${message}\0`, "latin1")]);
}

/** Opcode of a packet (1 RRQ, 2 WRQ, 3 DATA, 4 ACK, 5 ERROR, 6 OACK). */
export const opcode = (p: Buffer) => p.readUInt16BE(0);

/** Options of an OACK packet. */
export function oackOptions(p: Buffer): Record<string, string> {
  const fields = p.subarray(2).toString("latin1").split("\0");
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/** Local UDP ports currently bound on this machine (IPv4), from /proc/net/udp. */
export async function boundUdpPorts(): Promise<Set<number>> {
  const { readFile } = await import("node:fs/promises");
  const text = await readFile("/proc/net/udp", "utf8");
  const ports = new Set<number>();
  for (const line of text.split("\n").slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (local) ports.add(Number.parseInt(local.split(":")[1]!, 16));
  }
  return ports;
}

/** Poll `check` until true or `ms` pass; bounded. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}
