/**
 * The TFTP server: the boot folder read-only, the generated files main hands in, and Debian's iPXE
 * binaries as a fallback. The only adapter over the `tftp` package; its EventEmitter API stays here.
 */
import { constants, realpathSync, statSync, type ReadStream, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type { RemoteInfo } from "node:dgram";
import { join } from "node:path";
import type { Logger } from "pino";
import tftp from "tftp";
import { ContainedDir, refuseByName, type Refusal } from "../files/contained-dir.js";
import { TransferCaps, type TransferCapLimits } from "./transfer-caps.js";
import { settleBufferDeprecationCheck } from "./buffer-deprecation.js";

/** The iPXE builds firmware PXE clients fetch; served from the ipxe dir when the boot folder lacks them. */
export const IPXE_BINARIES = ["undionly.kpxe", "ipxe.efi", "snponly.efi"] as const;

/** Largest block size granted: the protocol maximum, so a client's own choice (1432, 1468, 8192...) stands. */
const MAX_BLKSIZE = 65_464;
/** Largest window granted (RFC 7440). OVMF asks 4; more only adds burst loss on busy links. */
const MAX_WINDOWSIZE = 16;
/** Pending `timeout` options of requests the package has not yet handed over; bounded against floods. */
const MAX_PENDING_OPTIONS = 256;

/** A running TFTP server. */
export type TftpServer = { port: number; close(): Promise<void> };

/** Where one iPXE binary will be served from: `path` when it will be, `refused` when a link forbids it. */
export type BootFileReport = { name: string; path?: string; refused?: string };

/** What main hands to `startTftpServer`. */
export type TftpOptions = {
  host: string;
  port: number;
  bootDir: string;
  ipxeDir: string;
  /** Generated content for a requested name, or undefined to look on disk. */
  dynamicFile: (name: string) => Buffer | undefined;
  logger: Logger;
  /** Concurrent transfer caps (`DEFAULT_TRANSFER_CAPS` when left out); a request over one gets an ERROR packet. */
  transferCaps?: TransferCapLimits;
  /**
   * Told how each read request ended, the bytes a completed one sent, and which file for which
   * client address (main counts them as metrics and files them in the machines' timelines).
   */
  onTransfer?: (result: "done" | "aborted" | "failed" | "refused" | "not_found" | "size_probe", bytes: number, transfer: TftpTransfer) => void;
};

/** Which file a transfer was for, and the client's address (TFTP knows no MAC). */
export type TftpTransfer = { file: string; address: string };

type Source =
  | { kind: "buffer"; data: Buffer; from: string }
  | { kind: "file"; handle: FileHandle; size: number; from: string }
  | { kind: "refused"; reason: Refusal }
  | { kind: "missing" };

function isIpxeBinary(name: string): boolean {
  return (IPXE_BINARIES as readonly string[]).includes(name);
}

function ipxePath(ipxeDir: string, name: string): string | undefined {
  try {
    // Debian's own links are followed on purpose: /usr/lib/ipxe/ipxe.efi → /boot/ipxe.efi.
    const real = realpathSync(join(ipxeDir, name));
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** For each iPXE binary, where TFTP will serve it from (boot folder first, then the ipxe dir). */
export function describeBootFiles(bootDir: string, ipxeDir: string): BootFileReport[] {
  const boot = new ContainedDir(bootDir);
  return IPXE_BINARIES.map((name) => {
    const found = boot.locateSync(name);
    if (found.kind === "file") return { name, path: found.path };
    if (found.kind === "refused") {
      return { name, refused: `${join(bootDir, name)} is refused (${found.reason}): a link in the boot folder must stay inside it` };
    }
    const path = ipxePath(ipxeDir, name);
    return path ? { name, path } : { name };
  });
}

async function openIpxeBinary(ipxeDir: string, name: string): Promise<Source> {
  let handle: FileHandle;
  try {
    handle = await open(join(ipxeDir, name), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return { kind: "missing" };
  }
  let st: Stats;
  try {
    st = await handle.stat();
  } catch {
    await handle.close().catch(() => undefined);
    return { kind: "missing" };
  }
  if (!st.isFile()) {
    await handle.close();
    return { kind: "missing" };
  }
  return { kind: "file", handle, size: st.size, from: join(ipxeDir, name) };
}

async function findSource(name: string, boot: ContainedDir, opts: TftpOptions): Promise<Source> {
  const byName = refuseByName(name);
  if (byName) return { kind: "refused", reason: byName };
  const generated = opts.dynamicFile(name);
  if (generated) return { kind: "buffer", data: generated, from: "generated" };
  const found = await boot.open(name);
  if (found.kind === "file") return { kind: "file", handle: found.handle, size: found.size, from: found.path };
  if (found.kind === "refused") return found;
  return isIpxeBinary(name) ? openIpxeBinary(opts.ipxeDir, name) : { kind: "missing" };
}

/** A request as it arrived on the listening port, read before the package parses (and partly drops) it. */
type RawRequest = { write: boolean; file: string; timeout?: number };

/** Opcode, name and `timeout` option (seconds, RFC 2349, which the package parses and then drops). */
function readRawRequest(message: Buffer): RawRequest | undefined {
  if (message.length < 4) return undefined;
  const op = message.readUInt16BE(0);
  if (op !== 1 && op !== 2) return undefined;
  const fields = message.subarray(2).toString("latin1").split("\0");
  const request: RawRequest = { write: op === 2, file: fields[0] ?? "" };
  // fields: file, mode, then key/value pairs, then the empty string after the last NUL.
  for (let i = 2; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toLowerCase() !== "timeout") continue;
    const value = fields[i + 1]!;
    const seconds = /^\d{1,3}$/.test(value) ? Number(value) : 0;
    if (seconds >= 1 && seconds <= 255) request.timeout = seconds;
  }
  return request;
}

/** ERROR packet, code 2 "Access violation" (RFC 1350). */
const accessViolation = Buffer.from("\x00\x05\x00\x02Access violation\x00", "latin1");
/** ERROR packet, code 0 "Not defined" with a message: too many transfers at once, try again. */
const serverBusy = Buffer.from("\x00\x05\x00\x00Server busy: too many transfers, retry later\x00", "latin1");

/** Bind the TFTP server; rejects with the socket's error (EADDRINUSE, EACCES...) when it cannot. */
export async function startTftpServer(opts: TftpOptions): Promise<TftpServer> {
  const { logger } = opts;
  // The package turns port 0 into 69 without a word; refuse rather than bind a port nobody asked for.
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65_535) {
    throw new RangeError(`TFTP port must be 1-65535, got ${opts.port}`);
  }
  const boot = new ContainedDir(opts.bootDir);
  let bootDirExists = false;
  try {
    bootDirExists = statSync(opts.bootDir).isDirectory();
  } catch {
    // reported below
  }
  if (!bootDirExists) {
    logger.warn({ bootDir: opts.bootDir }, "EDGEJOIN_BOOT_DIR is not a directory: TFTP serves only the iPXE binaries from the ipxe dir and generated files");
  }

  const active = new Set<tftp.GetStream>();
  const pendingTimeouts = new Map<string, number>();
  const caps = new TransferCaps(opts.transferCaps);

  const onRequest = (req: tftp.GetStream, res: tftp.PutStream) => {
    const started = performance.now();
    const client = `${req.stats.remoteAddress}:${req.stats.remotePort}`;
    const file = req.file;
    const { blockSize, windowSize } = req.stats;
    let settled = false;
    let ackedThrough = 0;
    let clientSentError = false;
    let size: number | undefined;
    let from: string | undefined;
    let source: ReadStream | undefined;
    active.add(req);
    caps.handedOver(req.stats.remoteAddress);

    const settle = () => {
      settled = true;
      active.delete(req);
      source?.destroy();
    };
    req.on("error", (err: Error) => {
      settle();
      const ms = Math.round(performance.now() - started);
      const bytes = Math.min(ackedThrough * blockSize, size ?? 0);
      if (clientSentError && ackedThrough === 0) {
        // OVMF's size probe: RRQ with tsize, read the OACK, send ERROR. Expected, not a failure.
        logger.debug({ file, client, ms, clientMessage: err.message }, "TFTP client ended after option negotiation (size probe)");
        opts.onTransfer?.("size_probe", 0, { file, address: req.stats.remoteAddress });
      } else if (clientSentError) {
        logger.info({ file, client, bytes, ms, clientMessage: err.message }, "TFTP transfer aborted by the client");
        opts.onTransfer?.("aborted", bytes, { file, address: req.stats.remoteAddress });
      } else {
        logger.warn({ file, client, bytes, ms, err: err.message }, "TFTP transfer failed");
        opts.onTransfer?.("failed", bytes, { file, address: req.stats.remoteAddress });
      }
    });
    req.on("abort", settle);
    // The package forwards res's transfer events to req, but a write racing an abort errors on res itself.
    res.on("error", (err: Error) => logger.debug({ file, client, err: err.message }, "TFTP write after the transfer ended"));
    res.on("finish", () => {
      settle();
      const ms = Math.round(performance.now() - started);
      logger.info({ file, client, from, bytes: size, ms, blksize: blockSize, windowsize: windowSize }, "TFTP transfer done");
      opts.onTransfer?.("done", size ?? 0, { file, address: req.stats.remoteAddress });
    });

    // The package reads every packet arriving at the transfer port without checking who sent it,
    // throws on packets under 2 bytes (which would crash the process), and its window code assumes
    // each ACK arrives once. Only the client's own packets get through, a repeated ACK is dropped
    // (RFC 1350's Sorcerer's Apprentice rule), and a throw aborts this transfer, not the process.
    const transfer = res._writer._socket;
    const handlers = transfer.listeners("message") as ((message: Buffer, rinfo: RemoteInfo) => void)[];
    transfer.removeAllListeners("message");
    let lastAck = -1;
    transfer.on("message", (message: Buffer, rinfo: RemoteInfo) => {
      if (rinfo.address !== req.stats.remoteAddress || rinfo.port !== req.stats.remotePort) return;
      if (message.length < 4) return;
      const op = message.readUInt16BE(0);
      if (op === 4) {
        const block = message.readUInt16BE(2);
        // A repeated ACK means the client is still waiting; the package's own timer resends.
        if (block === lastAck) return;
        lastAck = block;
        if (block > ackedThrough) ackedThrough = block;
      } else if (op === 5) {
        clientSentError = true;
      }
      try {
        for (const handle of handlers) handle.call(transfer, message, rinfo);
      } catch (err) {
        logger.warn({ file, client, err: (err as Error).message }, "TFTP transfer broke on a packet; aborting it");
        req.abort(tftp.EBADMSG);
      }
    });

    const timeout = pendingTimeouts.get(client);
    pendingTimeouts.delete(client);
    if (timeout !== undefined) {
      // Honour the client's retransmission interval and acknowledge it in the OACK (RFC 2349).
      res._writer._timeout = timeout * 1000;
      if (res._writer._responseExtensions) res._writer._responseExtensions.timeout = timeout;
    }

    if (req.method !== "GET") {
      req.abort(tftp.ENOPUT);
      return;
    }

    findSource(file, boot, opts).then(
      (found) => {
        if (settled) {
          if (found.kind === "file") void found.handle.close();
          return;
        }
        switch (found.kind) {
          case "refused":
            logger.info({ file, client, reason: found.reason }, "TFTP request refused");
            opts.onTransfer?.("refused", 0, { file, address: req.stats.remoteAddress });
            req.abort(tftp.EACCESS);
            return;
          case "missing":
            logger.info({ file, client }, "TFTP file not found");
            opts.onTransfer?.("not_found", 0, { file, address: req.stats.remoteAddress });
            req.abort(tftp.ENOENT);
            return;
          case "buffer":
            size = found.data.length;
            from = found.from;
            res.setSize(size);
            res.end(found.data);
            return;
          case "file": {
            size = found.size;
            from = found.from;
            // Capped at the size announced in tsize: a file growing mid-transfer must not overrun it.
            const stream = found.handle.createReadStream(size > 0 ? { start: 0, end: size - 1 } : { start: 0 });
            source = stream;
            stream.on("error", (err) => {
              logger.warn({ file, client, err: err.message }, "TFTP cannot read file");
              req.abort(tftp.EIO);
            });
            res.setSize(size);
            stream.pipe(res);
            return;
          }
        }
      },
      (err: unknown) => {
        logger.error({ file, client, err: (err as Error).message }, "TFTP cannot answer request");
        if (!settled) req.abort(tftp.EIO);
      },
    );
  };

  settleBufferDeprecationCheck();
  const server = tftp.createServer(
    {
      host: opts.host,
      port: opts.port,
      // Only the package's built-in listener reads root, and ours replaces it; listen() merely
      // checks that it is a directory, so a missing boot folder must not stop the fallbacks.
      root: bootDirExists ? opts.bootDir : ".",
      denyPUT: true,
      blockSize: MAX_BLKSIZE,
      windowSize: MAX_WINDOWSIZE,
    },
    onRequest,
  );

  // The listening socket: note each RRQ's `timeout`, and keep a throw in the package's parser
  // (or a source port it cannot answer) from reaching the process.
  const listening = server._socket;
  const parsers = listening.listeners("message") as ((message: Buffer, rinfo: RemoteInfo) => void)[];
  listening.removeAllListeners("message");
  listening.on("message", (message: Buffer, rinfo: RemoteInfo) => {
    if (rinfo.port === 0) return;
    const client = `${rinfo.address}:${rinfo.port}`;
    const request = readRawRequest(message);
    // The package answers writes itself (denyPUT) without a request event: log them here.
    if (request?.write) logger.info({ file: request.file, client }, "TFTP write refused: the server is read-only");
    const refusal = request && !request.write ? refuseByName(request.file) : undefined;
    if (refusal) {
      // Judged on the name as sent: the package would normalize `a/../b` to `b` and serve it.
      logger.info({ file: request!.file, client, reason: refusal }, "TFTP request refused");
      opts.onTransfer?.("refused", 0, { file: request!.file, address: rinfo.address });
      listening.send(accessViolation, rinfo.port, rinfo.address);
      return;
    }
    // Only what the package will take as a request counts (it refuses other sizes itself).
    if (request && !request.write && message.length >= 9 && message.length <= 512) {
      const load = caps.admit(
        rinfo.address,
        [...active].map((r) => r.stats.remoteAddress),
      );
      if (!load.ok) {
        logger.debug({ file: request.file, client, ...load }, "TFTP request refused: too many transfers at once");
        opts.onTransfer?.("refused", 0, { file: request.file, address: rinfo.address });
        listening.send(serverBusy, rinfo.port, rinfo.address);
        return;
      }
    }
    if (request?.timeout !== undefined) {
      if (pendingTimeouts.size >= MAX_PENDING_OPTIONS) pendingTimeouts.clear();
      pendingTimeouts.set(client, request.timeout);
    }
    try {
      for (const parse of parsers) parse.call(listening, message, rinfo);
    } catch (err) {
      logger.warn({ client, err: (err as Error).message }, "TFTP dropped a packet it could not parse");
    }
  });

  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => {
      try {
        server.close();
      } catch {
        // the socket never opened
      }
      reject(err);
    };
    server.once("error", failed);
    server.once("listening", () => {
      server.removeListener("error", failed);
      resolve();
    });
    server.listen();
  });
  // After start, errors on the listening socket are per packet; the server keeps serving.
  server.on("error", (err: Error) => logger.warn({ err: err.message }, "TFTP listening socket error"));

  let closed: Promise<void> | undefined;
  return {
    port: listening.address().port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.once("close", () => resolve());
        server.close();
        // The package lets running transfers go on after close; shutting down means ending them.
        for (const req of active) req.abort("Server shutting down");
      });
      return closed;
    },
  };
}
