/**
 * The stand-in installer of the machine lab: what Ubuntu's autoinstall does to a machine (write
 * its disk, report to the `reporting` webhook, install the nested user-data, reboot), in seconds.
 * iPXE boots it as a cluster's `ubuntu-autoinstall` profile: the lab guest's own kernel and
 * initrd, then a second initrd built here (a static busybox and `installer-standin/installer.sh`,
 * run with `rdinit=`). The disks it writes are the cached guest image's root and EFI system
 * partition, streamed from `/artifacts/`: only the extents that hold data.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { GuestImage } from "../helpers/guest-image.js";
import { requireTools } from "../helpers/tools.js";

const here = fileURLToPath(new URL("./installer-standin/", import.meta.url));

/** Where the installer's files live under `/artifacts/`. */
export const installerArtifacts = "edgejoin-installer";

/** A cluster installer profile that boots the stand-in (PRODUCT.md's `installer` object). */
export const standinInstaller = {
  kind: "ubuntu-autoinstall",
  kernel_url: "vmlinuz",
  initrd_urls: ["initrd.img", `${installerArtifacts}/installer.cpio.gz`],
  kernel_args: "rdinit=/edgejoin-installer console=ttyS0",
  iso_url: null,
} as const;

/** The disks the installer writes, in MiB: the guest's root on vda, its EFI system partition on vdb. */
export const installedDisks = { rootMiB: 2048, espMiB: 128 } as const;

/** The Debian package whose static busybox the installer runs on. */
const busyboxPackage = "busybox-static";

/** One entry of a newc cpio archive (what the kernel unpacks an initramfs from). */
type CpioEntry = { name: string; mode: number; data?: Buffer; rdev?: [number, number] };

/** A newc ("070701") cpio archive of `entries`, with its trailer. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  let ino = 1;
  for (const e of [...entries, { name: "TRAILER!!!", mode: 0 }] as CpioEntry[]) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const [major, minor] = e.rdev ?? [0, 0];
    const isDir = (e.mode & 0o170000) === 0o040000;
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    const fields = [ino++, e.mode, 0, 0, isDir ? 2 : 1, 0, data.length, 0, 0, major, minor, name.length, 0];
    const header = `070701${fields.map(hex).join("")}`;
    parts.push(Buffer.from(header), name, pad4(110 + name.length), data, pad4(data.length));
  }
  return Buffer.concat(parts);
}

const dir = (name: string): CpioEntry => ({ name, mode: 0o040755 });
const file = (name: string, data: Buffer, perm = 0o755): CpioEntry => ({ name, mode: 0o100000 | perm, data });

/** Whether an ELF64 executable names a program interpreter (PT_INTERP): dynamically linked. */
function elfInterpreter(elf: Buffer): boolean {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return true;
  return false;
}

/** The installer's initrd: static busybox, the script as `/edgejoin-installer`, a console node. */
export function installerInitrd(busybox = "/bin/busybox"): Buffer {
  requireTools({ busybox: busyboxPackage });
  const bb = readFileSync(busybox);
  // A dynamically linked busybox (Debian's `busybox`) would find no libc in the initrd.
  if (elfInterpreter(bb)) throw new Error(`${busybox} is dynamically linked: install the Debian package \`${busyboxPackage}\``);
  return gzipSync(
    cpioNewc([
      dir("edgejoin"),
      dir("edgejoin/bin"),
      file("edgejoin/bin/busybox", bb),
      // The script's interpreter must exist before it runs; the other applets it links itself.
      { name: "edgejoin/bin/sh", mode: 0o120777, data: Buffer.from("busybox") },
      file("edgejoin/udhcpc.script", readFileSync(join(here, "udhcpc.script"))),
      file("edgejoin-installer", readFileSync(join(here, "installer.sh"))),
      // The guest's initrd has no /dev: without a console node the kernel gives init no stdio.
      dir("dev"),
      { name: "dev/console", mode: 0o020600, rdev: [5, 1] },
    ]),
  );
}

/**
 * The MiB ranges of `path` that hold anything but zeros, runs closer than `gapMiB` merged: the
 * installer fetches and writes only these (a 2 GiB image with ~800 MiB of data: a few ranges).
 */
export function dataExtents(path: string, gapMiB = 4): { first: number; count: number }[] {
  const mib = 1 << 20;
  const fd = openSync(path, "r");
  const buf = Buffer.alloc(mib);
  const zero = Buffer.alloc(mib);
  const out: { first: number; count: number }[] = [];
  try {
    const total = Math.ceil(fstatSync(fd).size / mib);
    for (let i = 0; i < total; i++) {
      const n = readSync(fd, buf, 0, mib, i * mib);
      if (n === 0 || buf.subarray(0, n).equals(zero.subarray(0, n))) continue;
      const last = out[out.length - 1];
      if (last && i - (last.first + last.count) < gapMiB) last.count = i + 1 - last.first;
      else out.push({ first: i, count: 1 });
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function place(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/**
 * The installer's payload, made once per guest image and kept beside it: the data extents of
 * the root image (for vda) and the EFI system partition (for vdb) back to back, and the list
 * saying where each run goes (`DEV FIRST_MIB MIB_COUNT` per line, in stream order).
 */
function installerPayload(image: GuestImage): { payload: string; extents: string } {
  const payload = join(image.dir, "installer-payload");
  const extents = join(image.dir, "installer-extents");
  if (existsSync(payload) && existsSync(extents)) return { payload, extents };
  const mib = 1 << 20;
  const lines: string[] = [];
  const tmp = `${payload}.tmp-${process.pid}`;
  const out = openSync(tmp, "w");
  try {
    const buf = Buffer.alloc(mib);
    for (const [dev, path] of [
      ["vda", image.rootfs],
      ["vdb", image.esp],
    ] as const) {
      const fd = openSync(path, "r");
      try {
        for (const e of dataExtents(path)) {
          lines.push(`${dev} ${e.first} ${e.count}`);
          for (let i = e.first; i < e.first + e.count; i++) {
            // The last MiB of an image may be short: the disk is zero there anyway.
            readSync(fd, buf.fill(0), 0, mib, i * mib);
            writeSync(out, buf, 0, mib);
          }
        }
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    closeSync(out);
  }
  renameSync(tmp, payload);
  // Written last: its presence says the payload beside it is whole.
  writeFileSync(`${extents}.tmp-${process.pid}`, `${lines.join("\n")}\n`);
  renameSync(`${extents}.tmp-${process.pid}`, extents);
  return { payload, extents };
}

/** Put the installer's initrd, its payload and the payload's extent list into the artifacts folder. */
export function placeInstaller(artifactsDir: string, image: GuestImage): void {
  const into = join(artifactsDir, installerArtifacts);
  mkdirSync(into, { recursive: true });
  writeFileSync(join(into, "installer.cpio.gz"), installerInitrd());
  const { payload, extents } = installerPayload(image);
  place(payload, join(into, "payload"));
  copyFileSync(extents, join(into, "extents"));
}
