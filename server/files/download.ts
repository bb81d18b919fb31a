/**
 * One verified download into the artifacts folder: streamed to a temporary name beside the target
 * while its SHA-256 is computed, renamed only when the sum matches, deleted when it does not. A
 * 70 MB k3s binary or a 3 GB ISO never sits in memory, and the target is either the whole
 * verified file or untouched.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream } from "node:stream/web";

/** A download failure, its message one line naming the file. */
export class DownloadError extends Error {}

/** No byte for this long aborts the download: a stalled mirror must not hang the command forever. */
export const IDLE_TIMEOUT_MS = 60_000;

/** The SHA-256 of a file on disk, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** A temporary name beside `target`, so the rename stays on one file system. */
export function partialName(target: string): string {
  return `${target}.partial-${process.pid}`;
}

/** GET `url` into memory: for the small sums lists and nothing else (capped at 1 MB). */
export async function fetchText(url: string, idleMs = IDLE_TIMEOUT_MS): Promise<string> {
  const res = await get(url, idleMs);
  const text = await res.text();
  if (text.length > 1_000_000) throw new DownloadError(`${url} is over 1 MB: not a sums list`);
  return text;
}

async function get(url: string, idleMs: number, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { signal: signal ?? AbortSignal.timeout(idleMs), redirect: "follow" });
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    throw new DownloadError(`cannot download ${url} (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new DownloadError(`cannot download ${url}: ${res.status} ${res.statusText}`);
  }
  return res;
}

/** What one verified download did. */
export type Downloaded = { bytes: number; sha256: string; skipped: boolean };

/**
 * Download `url` to `target`, checking its SHA-256 against `expected` (lowercase hex; null: no
 * published sum, the caller judges the file). A target already holding the expected bytes is
 * kept and not fetched again. `check` may refuse the finished file before it is renamed.
 */
export async function downloadVerified(
  url: string,
  target: string,
  expected: string | null,
  opts: { name: string; idleMs?: number; check?: (partial: string) => string | undefined },
): Promise<Downloaded> {
  if (expected !== null && existsSync(target) && (await sha256File(target)) === expected) return { bytes: 0, sha256: expected, skipped: true };
  const idleMs = opts.idleMs ?? IDLE_TIMEOUT_MS;
  const abort = new AbortController();
  let idle = setTimeout(() => abort.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  const res = await get(url, idleMs, abort.signal).catch((err) => {
    clearTimeout(idle);
    throw err;
  });
  mkdirSync(dirname(target), { recursive: true });
  const partial = partialName(target);
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    if (!res.body) throw new Error("empty answer");
    await pipeline(Readable.fromWeb(res.body as ReadableStream), tap, createWriteStream(partial, { mode: 0o644 }));
  } catch (err) {
    rmSync(partial, { force: true });
    throw new DownloadError(`${opts.name}: download from ${url} failed (${(abort.signal.reason as Error | undefined)?.message ?? (err as Error).message})`);
  } finally {
    clearTimeout(idle);
  }
  const sha256 = hash.digest("hex");
  if (expected !== null && sha256 !== expected) {
    rmSync(partial, { force: true });
    throw new DownloadError(`${opts.name}: SHA-256 mismatch (published ${expected}, downloaded ${sha256}); deleted the download`);
  }
  const refused = opts.check?.(partial);
  if (refused) {
    rmSync(partial, { force: true });
    throw new DownloadError(`${opts.name}: ${refused}; deleted the download`);
  }
  renameSync(partial, target);
  return { bytes, sha256, skipped: false };
}
