/**
 * A loopback stand-in for the upstream download sites: an HTTP server holding each upstream URL
 * under its host name (`/github.com/k3s-io/...`), as `edgejoin artifacts fetch --mirror` reads
 * them. Big bodies are generated chunk by chunk, so a 70 MB binary costs the test no memory either.
 */
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A body: bytes, or `chunks` copies of one chunk (each stamped with its index so no two are alike). */
export type Body = Buffer | { chunk: Buffer; chunks: number };

/** The bytes of chunk `i` of a generated body. */
function nth(b: { chunk: Buffer; chunks: number }, i: number): Buffer {
  const c = Buffer.from(b.chunk);
  c.writeUInt32LE(i, 0);
  return c;
}

/** SHA-256 of a body, hex. */
export function sha256Of(body: Body): string {
  const h = createHash("sha256");
  if (Buffer.isBuffer(body)) h.update(body);
  else for (let i = 0; i < body.chunks; i++) h.update(nth(body, i));
  return h.digest("hex");
}

/** A generated body of about `mb` megabytes. */
export function bigBody(mb: number): Body {
  return { chunk: randomBytes(1 << 20), chunks: mb };
}

/** What the mirror saw: each path asked, and hooks around a body being sent. */
export type Mirror = {
  url: string;
  files: Map<string, Body>;
  requests: string[];
  /** Called when a body starts and just before its last byte is written (the client is mid-download then). */
  onBody?: (path: string, phase: "start" | "end") => void;
  close(): Promise<void>;
};

/** Start a mirror on 127.0.0.1 serving `files` (paths as they appear in request URLs, `+` as `%2B`). */
export async function startMirror(files: Map<string, Body>): Promise<Mirror> {
  const mirror: Mirror = {
    url: "",
    files,
    requests: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    mirror.requests.push(path);
    const body = files.get(path);
    if (!body) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    void (async () => {
      mirror.onBody?.(path, "start");
      if (Buffer.isBuffer(body)) {
        res.writeHead(200, { "content-length": body.length }).end(body);
        return;
      }
      res.writeHead(200, { "content-length": body.chunk.length * body.chunks });
      for (let i = 0; i < body.chunks; i++) {
        if (i === body.chunks - 1) mirror.onBody?.(path, "end");
        if (!res.write(nth(body, i))) await once(res, "drain");
      }
      res.end();
    })().catch(() => res.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  mirror.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return mirror;
}

/** A process's peak resident memory so far, in bytes (Linux `/proc/PID/status` VmHWM). */
export function peakRss(pid: number): number {
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? Number.NaN) * 1024;
}
