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

/**
 * A validator that changes whenever the file does: size and modification time in hex, as nginx
 * makes them. Strong, because a replaced file of the same size and time is not something an
 * admin copying releases does, and Range needs a strong validator for If-Range.
 */
function entityTag(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

/** RFC 9110 §13.1.2: `*` or any listed tag equal under weak comparison (a `W/` prefix ignored). */
function noneMatch(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  const bare = (t: string) => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => bare(t) === bare(etag));
}

/**
 * Whether the client's copy is current (→ 304). If-None-Match wins over If-Modified-Since
 * (RFC 9110 §13.2.2); an unparseable date is ignored, as the RFC says.
 */
function notModified(headers: { ifNoneMatch?: string | undefined; ifModifiedSince?: string | undefined }, etag: string, mtimeMs: number): boolean {
  if (headers.ifNoneMatch !== undefined) return noneMatch(headers.ifNoneMatch, etag);
  if (headers.ifModifiedSince === undefined) return false;
  const since = Date.parse(headers.ifModifiedSince);
  // HTTP dates have whole seconds: a file changed within the same second counts as unchanged.
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}

/** Read-only files from the artifacts folder (GET, HEAD, single byte ranges, conditional requests). */
export const artifactsRoutes = new Hono<AppEnv>().get("/artifacts/*", async (c) => {
  const name = requestedName(c.req.url);
  if (!name) throw new ApiError("not_found", "no such artifact");
  const opened = await new ContainedDir(c.var.deps.config.artifactsDir).open(name);
  if (opened.kind === "missing") throw new ApiError("not_found", `no artifact ${name} in the artifacts folder`);
  if (opened.kind === "refused") throw new ApiError("forbidden", "that path is not a file inside the artifacts folder");
  const { handle, size } = opened;
  let mtimeMs: number;
  try {
    mtimeMs = (await handle.stat()).mtimeMs;
  } catch {
    await handle.close();
    throw new ApiError("not_found", `no artifact ${name} in the artifacts folder`);
  }
  const etag = entityTag(size, mtimeMs);
  const validators = { etag, "last-modified": new Date(mtimeMs).toUTCString(), "cache-control": "no-cache" };
  if (notModified({ ifNoneMatch: c.req.header("if-none-match"), ifModifiedSince: c.req.header("if-modified-since") }, etag, mtimeMs)) {
    await handle.close();
    return c.body(null, 304, validators);
  }
  // If-Range: resume only if the file is still the one the client has the start of; else send it whole.
  const ifRange = c.req.header("if-range");
  const rangeHeader = ifRange === undefined || ifRange.trim() === etag || ifRange.trim() === validators["last-modified"] ? c.req.header("range") : undefined;
  const range = byteRange(rangeHeader, size);
  if (range === "unsatisfiable") {
    await handle.close();
    c.header("content-range", `bytes */${size}`);
    throw new ApiError("range_not_satisfiable", `the file has ${size} bytes`);
  }
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "accept-ranges": "bytes",
    "content-length": String(range ? range.end - range.start + 1 : size),
    ...validators,
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
