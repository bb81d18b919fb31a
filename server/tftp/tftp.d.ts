/**
 * Types for the npm `tftp` 0.1.2 package (server side only). Only server/tftp/ imports it.
 * Fields starting with `_` are the package's internals that server/tftp/server.ts reaches into,
 * each for a reason given there; they are typed here so a package upgrade fails type-checking.
 */
declare module "tftp" {
  import type { EventEmitter } from "node:events";
  import type { Socket } from "node:dgram";
  import type { Readable, Writable } from "node:stream";

  namespace tftp {
    interface ServerOptions {
      /** An IP address; anything else throws. Defaults to 127.0.0.1. */
      host?: string;
      /** 0 (or nothing) silently becomes 69. */
      port?: number;
      /** Only the built-in request listener reads it, but `listen()` fails unless it is a directory. */
      root?: string;
      denyGET?: boolean;
      denyPUT?: boolean;
      /** Largest blksize granted; a client asking more gets this. [8, 65464], default 1468. */
      blockSize?: number;
      /** Largest windowsize granted. Default 4. */
      windowSize?: number;
      retries?: number;
      /** Retransmission interval in milliseconds. Default 3000. */
      timeout?: number;
    }

    /** Negotiated parameters of one transfer. */
    interface TransferStats {
      blockSize: number;
      windowSize: number;
      size: number | null;
      userExtensions: Record<string, string>;
      retries: number;
      timeout: number;
      localAddress: string;
      localPort: number;
      remoteAddress: string;
      remotePort: number;
    }

    /**
     * The "connection" of one request: emits `close` (always first), then `error` (Error),
     * `abort` (we aborted), or nothing when the transfer ended well.
     */
    interface GetStream extends Readable {
      /** The requested name after `path.normalize`; a name starting with `..` never gets here. */
      file: string;
      method: "GET" | "PUT";
      stats: TransferStats;
      /** Sends an ERROR packet; a message equal to one of the exported codes' text gets that code. */
      abort(error?: string | Error): void;
      close(): void;
    }

    /** The package's per-transfer protocol state (a Writer over an IncomingRequest). */
    interface IncomingWriter {
      /** Retransmission interval in ms, read each time a retransmission timer starts. */
      _timeout: number;
      /** Options to put in the OACK; null when the client sent none the package knows. */
      _responseExtensions: Record<string, number | string> | null;
      /** The transfer's own socket (a new ephemeral port per transfer). */
      _socket: Socket;
    }

    /** Where a GET's data is written; emits `finish` once the client has acknowledged the last block. */
    interface PutStream extends Writable {
      /** Must be called for every GET the listener answers; resumes option negotiation. */
      setSize(size: number): void;
      setUserExtensions(userExtensions: Record<string, string>): void;
      _writer: IncomingWriter;
    }

    interface Server extends EventEmitter {
      host: string;
      port: number;
      root: string;
      /** Validates `root`, binds, then emits `listening` or `error`. */
      listen(): void;
      /** Stops accepting requests; transfers already running continue. */
      close(): void;
      /** The listening socket; its one `message` listener parses new requests. */
      _socket: Socket;
    }
  }

  const tftp: {
    createServer(options: tftp.ServerOptions, requestListener: (req: tftp.GetStream, res: tftp.PutStream) => void): tftp.Server;
    /** "File not found" (code 1). */
    ENOENT: string;
    /** "Access violation" (code 2). */
    EACCESS: string;
    /** "Illegal TFTP operation" (code 4). */
    EBADOP: string;
    /** "I/O error" (code 0). */
    EIO: string;
    /** "Cannot PUT files" (code 0). */
    ENOPUT: string;
    /** "Malformed TFTP message" (code 0). */
    EBADMSG: string;
    /** "Timed out" (code 0). */
    ETIME: string;
  };
  export = tftp;
}
