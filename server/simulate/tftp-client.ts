/**
 * A TFTP read client (RFC 1350 with the blksize and tsize options, RFC 2347-2349), as a firmware
 * PXE client speaks it: RRQ, OACK, one ACK per block, retransmission on silence. Written on
 * `node:dgram` rather than with the `tftp` package so the simulator and the bench drive the
 * server with no EventEmitter layer of their own, and so that only `server/tftp/` uses the package.
 */
import { createSocket } from "node:dgram";

/** What one finished transfer gave. */
export type TftpResult = { bytes: number; blocks: number; retransmits: number };

/** Options of one read: block size asked (the server may grant less), silence before a resend, resends allowed. */
export type TftpGetOptions = {
  blksize?: number;
  timeoutMs?: number;
  retries?: number;
  localAddress?: string | undefined;
  /** Double the silence allowed after each resend (up to 8 s), as PXE firmware does. */
  backoff?: boolean;
};

/** A TFTP ERROR packet from the server, e.g. code 1 File not found. */
export class TftpError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function rrq(file: string, blksize: number): Buffer {
  const fields = [file, "octet", "blksize", String(blksize), "tsize", "0"];
  return Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${fields.join("\0")}\0`, "latin1")]);
}

function ack(block: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(4, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

/** Read `file` from the TFTP server at host:port; resolves once the last (short) block arrived. */
export function tftpGet(host: string, port: number, file: string, o: TftpGetOptions = {}): Promise<TftpResult> {
  const asked = o.blksize ?? 1468;
  const timeoutMs = o.timeoutMs ?? 1000;
  const retries = o.retries ?? 5;
  return new Promise<TftpResult>((resolve, reject) => {
    const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
    let peerPort: number | undefined;
    let blksize = 512;
    // The next block expected, counted without wrapping; on the wire it is modulo 65536.
    let expected = 1;
    let bytes = 0;
    let retransmits = 0;
    let misses = 0;
    let last = rrq(file, asked);
    let timer: NodeJS.Timeout | undefined;

    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve({ bytes, blocks: expected - 1, retransmits });
    };
    const arm = () => {
      clearTimeout(timer);
      const wait = o.backoff ? Math.min(8_000, timeoutMs * 2 ** misses) : timeoutMs;
      timer = setTimeout(() => {
        if (++misses > retries) return finish(new Error(`TFTP ${file}: no answer from ${host}:${port} after ${retries} resends`));
        retransmits++;
        socket.send(last, peerPort ?? port, host);
        arm();
      }, wait);
    };
    const send = (packet: Buffer) => {
      last = packet;
      socket.send(packet, peerPort ?? port, host);
      arm();
    };

    socket.on("error", (err) => finish(err));
    if (o.localAddress) socket.bind(0, o.localAddress);
    socket.on("message", (msg, rinfo) => {
      if (msg.length < 4) return;
      // The transfer's port is the first one the server answers from (RFC 1350 TID); others are strays.
      if (peerPort === undefined) peerPort = rinfo.port;
      else if (rinfo.port !== peerPort) return;
      const op = msg.readUInt16BE(0);
      if (op === 5) return finish(new TftpError(msg.readUInt16BE(2), msg.subarray(4).toString("latin1").replace(/\0.*$/s, "")));
      if (op === 6) {
        const fields = msg.subarray(2).toString("latin1").split("\0");
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toLowerCase() === "blksize") blksize = Number(fields[i + 1]);
        misses = 0;
        return send(ack(0));
      }
      if (op !== 3) return;
      const block = msg.readUInt16BE(2);
      if (block !== (expected & 0xffff)) {
        // A duplicate of a block already taken: the ACK was lost; say so again.
        if (block === ((expected - 1) & 0xffff)) socket.send(ack(block), peerPort, host);
        return;
      }
      misses = 0;
      const data = msg.length - 4;
      bytes += data;
      expected++;
      if (data < blksize) {
        socket.send(ack(block), peerPort, host, () => finish());
        clearTimeout(timer);
        return;
      }
      send(ack(block));
    });
    send(last);
  });
}
