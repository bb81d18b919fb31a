/**
 * Copy one file out of an ISO 9660 image (Ubuntu's live-server ISO) without mounting it (no root,
 * no loop device) and without reading the whole image: the volume descriptor, the directories on
 * the way, then the file's extent streamed to disk. Names are read from Rock Ridge (`NM`) when the
 * image has it, else the plain ISO 9660 name without `;1` and compared case-insensitively.
 */
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { open, type FileHandle } from "node:fs/promises";
import { pipeline } from "node:stream/promises";

const SECTOR = 2048;
/** A directory larger than this is not one a live ISO has: refused rather than read into memory. */
const MAX_DIRECTORY_BYTES = 4 * 1024 * 1024;

type Entry = { name: string; extent: number; size: number; isDir: boolean };

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead < length) throw new Error("the image ends early");
  return buf;
}

/** The Rock Ridge alternate name in a record's system-use area, if any. */
function rockRidgeName(su: Buffer): string | undefined {
  let name = "";
  let found = false;
  // Each entry is at least 4 bytes; the loop advances by its length, so it ends within su.length / 4 steps.
  for (let i = 0; i + 4 <= su.length; ) {
    const len = su[i + 2]!;
    if (len < 4 || i + len > su.length) break;
    if (su.toString("latin1", i, i + 2) === "NM" && len >= 5) {
      name += su.toString("utf8", i + 5, i + len);
      found = true;
    }
    i += len;
  }
  return found ? name : undefined;
}

function entries(dir: Buffer): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < dir.length; ) {
    const len = dir[i]!;
    if (len === 0) {
      // Records never cross a sector: the rest of this sector is padding.
      i = (Math.floor(i / SECTOR) + 1) * SECTOR;
      continue;
    }
    if (len < 34 || i + len > dir.length) break;
    const rec = dir.subarray(i, i + len);
    const nameLen = rec[32]!;
    const raw = rec.subarray(33, 33 + nameLen);
    i += len;
    if (nameLen === 1 && (raw[0] === 0 || raw[0] === 1)) continue; // "." and ".."
    const suStart = 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0);
    const plain = raw.toString("latin1").replace(/;\d+$/, "").replace(/\.$/, "");
    out.push({
      name: rockRidgeName(rec.subarray(suStart)) ?? plain,
      extent: rec.readUInt32LE(2),
      size: rec.readUInt32LE(10),
      isDir: (rec[25]! & 0x02) !== 0,
    });
  }
  return out;
}

/** Where `inner` (`casper/vmlinuz`) lies in the image, or a reason it cannot be found. */
export async function locateInIso(isoPath: string, inner: string): Promise<{ offset: number; size: number } | string> {
  const fh = await open(isoPath, "r");
  try {
    const pvd = await readAt(fh, 16 * SECTOR, SECTOR);
    if (pvd[0] !== 1 || pvd.toString("latin1", 1, 6) !== "CD001") return "not an ISO 9660 image (no primary volume descriptor)";
    const blockSize = pvd.readUInt16LE(128);
    let current: Entry = { name: "", extent: pvd.readUInt32LE(156 + 2), size: pvd.readUInt32LE(156 + 10), isDir: true };
    const parts = inner.split("/").filter(Boolean);
    for (const [n, part] of parts.entries()) {
      if (!current.isDir) return `${parts.slice(0, n).join("/")} is not a folder in the image`;
      if (current.size > MAX_DIRECTORY_BYTES) return `the image's folder ${parts.slice(0, n).join("/") || "/"} is implausibly large`;
      const dir = await readAt(fh, current.extent * blockSize, current.size);
      const next = entries(dir).find((e) => e.name.toLowerCase() === part.toLowerCase());
      if (!next) return `the image has no ${parts.slice(0, n + 1).join("/")}`;
      current = next;
    }
    if (current.isDir) return `${inner} is a folder in the image`;
    return { offset: current.extent * blockSize, size: current.size };
  } finally {
    await fh.close();
  }
}

/** Copy `inner` out of the image to `target` (through a temporary name); resolves with its size. */
export async function extractFromIso(isoPath: string, inner: string, target: string): Promise<number> {
  const where = await locateInIso(isoPath, inner);
  if (typeof where === "string") throw new Error(where);
  mkdirSync(dirname(target), { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  try {
    // createReadStream's `end` is inclusive, so an empty file cannot be read as a range.
    if (where.size > 0) {
      await pipeline(createReadStream(isoPath, { start: where.offset, end: where.offset + where.size - 1 }), createWriteStream(partial, { mode: 0o644 }));
    } else writeFileSync(partial, "", { mode: 0o644 });
    renameSync(partial, target);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  return where.size;
}
