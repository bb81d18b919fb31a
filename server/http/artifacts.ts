/**
 * `GET`/`HEAD /artifacts/...`: the admin's artifacts folder (installer kernel and initrd, ISO,
 * k3s binary and install script, air-gap images), read-only, every path contained in it,
 * with single byte ranges so interrupted downloads of large files resume.
 */
import { Readable } from "node:stream";
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { ApiError } from "../errors.js";
import { ContainedDir } from "../files/contained-dir.js";

/** The requested name, percent-decoded per segment; a segment may not decode to a slash or NUL. */
function requestedName(url: string): string | undefined {
  const raw = new URL(url).pathname.slice("/artifacts/".length);
  try {
    const segments = raw.split("/").map((s) => decodeURIComponent(s));
    if (segments.some((s) => s.includes("/") || s.includes("\0"))) return undefined;
    return segments.join("/");
  } catch {
    return undefined;
  }
}

/** `bytes=START-END` / `bytes=START-` / `bytes=-SUFFIX` → inclusive range; undefined = serve it whole. */
function byteRange(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

/** Read-only files from the artifacts folder (GET, HEAD, single byte ranges). */
export const artifactsRoutes = new Hono<AppEnv>().get("/artifacts/*", async (c) => {
  const name = requestedName(c.req.url);
  if (!name) throw new ApiError("not_found", "no such artifact");
  const opened = await new ContainedDir(c.var.deps.config.artifactsDir).open(name);
  if (opened.kind === "missing") throw new ApiError("not_found", `no artifact ${name} in the artifacts folder`);
  if (opened.kind === "refused") throw new ApiError("forbidden", "that path is not a file inside the artifacts folder");
  const { handle, size } = opened;
  const range = byteRange(c.req.header("range"), size);
  if (range === "unsatisfiable") {
    await handle.close();
    c.header("content-range", `bytes */${size}`);
    throw new ApiError("range_not_satisfiable", `the file has ${size} bytes`);
  }
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "accept-ranges": "bytes",
    "content-length": String(range ? range.end - range.start + 1 : size),
    "cache-control": "no-cache",
  };
  if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${size}`;
  const status = range ? 206 : 200;
  // hono answers HEAD by running this GET handler and dropping the body: close the file here instead.
  if (c.req.method === "HEAD" || size === 0) {
    await handle.close();
    return c.body(null, status, headers);
  }
  const stream = handle.createReadStream(range ? { start: range.start, end: range.end } : {});
  return c.body(Readable.toWeb(stream) as ReadableStream, status, headers);
});
