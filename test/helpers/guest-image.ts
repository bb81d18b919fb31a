/**
 * A Debian 12 guest for the lab, built from Debian's own packages: `debootstrap` into a folder,
 * `mkfs.ext4 -d` into a raw ext4 image (no loop mount, so no privileges beyond root in a
 * container), plus the kernel and initrd edgejoin serves to iPXE. Cached under `.lab/cache/`
 * by a hash of the recipe, built in a temp folder and renamed into place so an interrupted
 * build never leaves a cache entry that looks whole.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { chmod, mkdir, readdir, rename, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireTools } from "./tools.js";

/** The repository's gitignored lab folder. */
export const labDir = fileURLToPath(new URL("../../.lab/", import.meta.url));

/** A built guest: a raw ext4 root file system and the kernel + initrd that boot it. */
export type GuestImage = {
  /** Hash of the recipe; names the cache entry. */
  key: string;
  dir: string;
  rootfs: string;
  /** Raw FAT image: an EFI system partition whose systemd-boot boots `rootfs` as /dev/vda. */
  esp: string;
  kernel: string;
  initrd: string;
};

const suite = "bookworm";

/**
 * What goes into the image. `udev` because systemd waits for `/dev/vda` as a device unit before
 * it checks and remounts the root; `ifupdown` + `isc-dhcp-client` because cloud-init's fallback
 * network config on Debian renders `/etc/network/interfaces`; `iproute2` and `procps` for the
 * agent's facts and cloud-init's own probes.
 */
export const guestPackages = [
  "linux-image-amd64",
  "systemd-sysv",
  "udev",
  "cloud-init",
  "curl",
  "ca-certificates",
  "ifupdown",
  "isc-dhcp-client",
  "iproute2",
  "procps",
  // logind needs it: without it the ACPI power button (a clean power-off) does nothing and
  // cloud-init cannot set the hostname through hostnamectl.
  "dbus",
  // debootstrap does not resolve virtual packages: python3-cryptography needs
  // python3-cffi-backend-api-min, which only this package provides.
  "python3-cffi-backend",
  // Only to build the machine's EFI system partition inside the chroot (no host tools, no loop
  // mount): systemd-boot as the disk's boot loader, written onto a FAT image with mtools.
  "systemd-boot-efi",
  "dosfstools",
  "mtools",
] as const;

/** Files written into the root after debootstrap, part of the recipe hash. */
const guestFiles: Record<string, string> = {
  // The initramfs mounts the root read-only (no `rw` on the kernel line); this makes systemd remount it.
  "etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
  "etc/hostname": "edgejoin-guest\n",
  "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 edgejoin-guest\n",
  // Empty: each machine generates its own id on first boot, so overlays of one image differ.
  "etc/machine-id": "",
  "etc/resolv.conf": "",
  // Only NoCloud: probing cloud metadata services that do not exist costs minutes of timeouts.
  "etc/cloud/cloud.cfg.d/90-edgejoin-lab.cfg": "datasource_list: [ NoCloud, None ]\n",
  // NoCloud probes every block device for a seed label; QEMU's i440fx floppy answers with I/O errors.
  "etc/modprobe.d/edgejoin-lab.conf": "blacklist floppy\n",
  // The loopback stanza only: cloud-init writes the NIC's own stanza from its fallback config.
  "etc/network/interfaces": "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n",
};

/** Size of the raw image; sparse, so unused space costs nothing on the host. */
const rootfsSize = "2G";

/**
 * The machine's "own disk" boot: an EFI system partition (a second disk; the root stays a whole
 * ext4 disk so `root=/dev/vda` holds) whose systemd-boot starts the installed kernel. UEFI
 * firmware reaches it when iPXE's local-disk script exits back to the firmware's boot order.
 */
const espFiles: Record<string, string> = {
  "loader/loader.conf": "default edgejoin.conf\ntimeout 0\n",
  "loader/entries/edgejoin.conf": "title Debian (installed by edgejoin)\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=/dev/vda console=ttyS0\n",
};
const espSizeKiB = 131_072;

const recipe = {
  version: 1,
  suite,
  arch: "amd64",
  variant: "minbase",
  packages: guestPackages,
  files: guestFiles,
  rootfsSize,
  espFiles,
  espSizeKiB,
};

/** The cache key: a hash of everything that decides the image's content. */
export function guestImageKey(): string {
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 16);
}

/**
 * The Debian mirror this machine's apt already uses, read from its sources at run time so no
 * mirror host is written into the repository.
 */
export function debianMirror(root = "/etc/apt"): string {
  const candidates: string[] = [];
  const sourcesDir = join(root, "sources.list.d");
  const deb822 = existsSync(sourcesDir) ? readdirSync(sourcesDir).filter((f) => f.endsWith(".sources")) : [];
  for (const f of deb822) {
    for (const stanza of readFileSync(join(sourcesDir, f), "utf8").split(/\n\s*\n/)) {
      const field = (name: string) => stanza.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1]?.trim() ?? "";
      if (field("Enabled") === "no" || !field("Types").split(/\s+/).includes("deb")) continue;
      if (!field("Suites").split(/\s+/).includes(suite)) continue;
      candidates.push(...field("URIs").split(/\s+/));
    }
  }
  const list = join(root, "sources.list");
  if (existsSync(list)) {
    for (const line of readFileSync(list, "utf8").split("\n")) {
      const m = line.match(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
      if (m && m[2] === suite) candidates.push(m[1]!);
    }
  }
  const mirror = candidates.find((u) => /^https?:\/\//.test(u) && !/security/.test(u));
  if (!mirror) {
    throw new Error(
      `no Debian ${suite} mirror in ${root}/sources.list or ${sourcesDir}/*.sources: the lab builds its guest with debootstrap from the machine's own apt mirror`,
    );
  }
  return mirror;
}

/** Which Debian package provides each tool the image build needs. */
const buildTools: Record<string, string> = {
  debootstrap: "debootstrap",
  "mkfs.ext4": "e2fsprogs",
};

function run(cmd: string, args: string[], log: NodeJS.WritableStream, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    log.write(`$ ${cmd} ${args.join(" ")}\n`);
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin`, DEBIAN_FRONTEND: "noninteractive" },
    });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

/** The one file in `dir` whose name starts with `prefix` (e.g. `vmlinuz-6.1.0-…`). */
async function onlyFile(dir: string, prefix: string): Promise<string> {
  const found = (await readdir(dir)).filter((f) => f.startsWith(prefix));
  if (found.length !== 1) throw new Error(`expected one ${prefix}* in ${dir}, found ${found.join(", ") || "none"}`);
  return join(dir, found[0]!);
}

/** Drop entries of older recipes and temp folders of builds whose process is gone. */
async function pruneCache(cacheDir: string, key: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    const stale = /^guest-/.test(name) && name !== `guest-${key}`;
    const pid = /^tmp-[0-9a-f]+-(\d+)-/.exec(name)?.[1];
    const orphan = pid !== undefined && !existsSync(`/proc/${pid}`);
    if (stale || orphan) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
}

/**
 * How long one build may take. Quiet, with a near mirror, it takes minutes; on two cores shared
 * with the integration tier it has taken over twelve, and a build killed midway is all lost.
 */
export const guestBuildTimeoutMs = 25 * 60_000;

function imageAt(key: string, dir: string): GuestImage {
  return { key, dir, rootfs: join(dir, "rootfs.ext4"), esp: join(dir, "esp.img"), kernel: join(dir, "vmlinuz"), initrd: join(dir, "initrd.img") };
}

/**
 * The cached guest image, built first if absent (268 s on an idle two-core machine here).
 * `log` receives a line per step; the build's full output goes to `build.log` in the entry.
 */
export async function ensureGuestImage(opts: { cacheDir?: string; log?: (line: string) => void; timeoutMs?: number } = {}): Promise<GuestImage> {
  const cacheDir = opts.cacheDir ?? join(labDir, "cache");
  const key = guestImageKey();
  const final = join(cacheDir, `guest-${key}`);
  const cached = () => existsSync(join(final, "rootfs.ext4")) && existsSync(join(final, "esp.img"));
  const cachedImage = () => {
    opts.log?.(`guest image ${key}: cached`);
    return imageAt(key, final);
  };
  if (cached()) return cachedImage();
  const deadline = Date.now() + (opts.timeoutMs ?? guestBuildTimeoutMs);
  await mkdir(cacheDir, { recursive: true });
  // Two lab files on two vitest workers may both need the image: one builds it, the other waits
  // for it, instead of two debootstraps sharing two cores and both missing their deadline.
  const lock = join(cacheDir, `building-${key}.pid`);
  for (let round = 0; ; round++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch {
      // Held (or just released: read it again next round).
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(lock, "utf8").trim());
    } catch {
      continue;
    }
    if (!owner || !existsSync(`/proc/${owner}`)) rmSync(lock, { force: true });
    else if (cached()) return cachedImage();
    else if (Date.now() > deadline || round > 10_000) throw new Error(`guest image ${key}: still being built by process ${owner} after the deadline`);
    else await new Promise((r) => setTimeout(r, 2_000));
  }
  try {
    // The lock may have been let go by a build that just finished.
    if (cached()) return cachedImage();
    return await buildGuestImage({ ...opts, timeoutMs: Math.max(1_000, deadline - Date.now()) });
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Build the image into the cache; the caller holds the build lock and found no entry. */
async function buildGuestImage(opts: { cacheDir?: string; log?: (line: string) => void; timeoutMs: number }): Promise<GuestImage> {
  const cacheDir = opts.cacheDir ?? join(labDir, "cache");
  const say = opts.log ?? (() => {});
  const key = guestImageKey();
  const final = join(cacheDir, `guest-${key}`);
  requireTools(buildTools);
  if (process.getuid?.() !== 0) throw new Error("building the guest image needs root (debootstrap chroots and creates device nodes)");
  const mirror = debianMirror();
  const deadline = Date.now() + opts.timeoutMs;
  const left = () => Math.max(1_000, deadline - Date.now());

  await mkdir(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `tmp-${key}-${process.pid}-${Date.now()}`);
  const root = join(tmp, "root");
  await mkdir(root, { recursive: true });
  const logStream = createWriteStream(join(tmp, "build.log"));
  const started = Date.now();
  try {
    say(`guest image ${key}: debootstrap ${suite} from ${mirror}`);
    await run(
      "debootstrap",
      [`--variant=${recipe.variant}`, `--arch=${recipe.arch}`, "--components=main", `--include=${guestPackages.join(",")}`, suite, root, mirror],
      logStream,
      left(),
    );
    for (const [path, content] of Object.entries(guestFiles)) {
      const target = join(root, path);
      await mkdir(join(target, ".."), { recursive: true });
      await rm(target, { force: true });
      await writeFile(target, content);
      await chmod(target, 0o644);
    }
    await rm(join(root, "var/cache/apt/archives"), { recursive: true, force: true });
    await mkdir(join(root, "var/cache/apt/archives/partial"), { recursive: true });
    await rm(join(root, "var/lib/apt/lists"), { recursive: true, force: true });
    await mkdir(join(root, "var/lib/apt/lists/partial"), { recursive: true });

    await copyFile(await onlyFile(join(root, "boot"), "vmlinuz-"), join(tmp, "vmlinuz"));
    await copyFile(await onlyFile(join(root, "boot"), "initrd.img-"), join(tmp, "initrd.img"));

    say(`guest image ${key}: EFI system partition`);
    for (const [path, content] of Object.entries(espFiles)) {
      await mkdir(join(root, "tmp/esp", path, ".."), { recursive: true });
      await writeFile(join(root, "tmp/esp", path), content);
    }
    const esp = [
      `mkfs.fat -C -n ESP /tmp/esp.img ${espSizeKiB}`,
      "mmd -i /tmp/esp.img ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries",
      "mcopy -i /tmp/esp.img /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI",
      "mcopy -i /tmp/esp.img /boot/vmlinuz-* ::/vmlinuz",
      "mcopy -i /tmp/esp.img /boot/initrd.img-* ::/initrd.img",
      ...Object.keys(espFiles).map((p) => `mcopy -i /tmp/esp.img /tmp/esp/${p} ::/${p}`),
    ];
    await run("chroot", [root, "/bin/sh", "-ec", `export MTOOLS_SKIP_CHECK=1; ${esp.join("; ")}`], logStream, left());
    await rename(join(root, "tmp/esp.img"), join(tmp, "esp.img"));
    await rm(join(root, "tmp/esp"), { recursive: true, force: true });

    say(`guest image ${key}: mkfs.ext4 -d`);
    await run("mkfs.ext4", ["-q", "-F", "-L", "root", "-d", root, join(tmp, "rootfs.ext4"), rootfsSize], logStream, left());
    await rm(root, { recursive: true, force: true });
    await new Promise<void>((resolve) => logStream.end(resolve));
    try {
      await rename(tmp, final);
    } catch (err) {
      // Another run finished the same recipe first; its entry is as good as ours.
      if (!existsSync(join(final, "rootfs.ext4"))) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    await pruneCache(cacheDir, key);
    const size = (await stat(join(final, "rootfs.ext4"))).blocks * 512;
    say(`guest image ${key}: built in ${Math.round((Date.now() - started) / 1000)} s (${Math.round(size / 2 ** 20)} MiB used)`);
    return imageAt(key, final);
  } catch (err) {
    logStream.end();
    // debootstrap's own log names the package that failed; its console output only says "see log".
    const logs = [join(root, "debootstrap/debootstrap.log"), join(tmp, "build.log")];
    const tail = logs
      .filter((f) => existsSync(f))
      .map((f) => {
        const lines = readFileSync(f, "utf8").split("\n");
        return [...lines.filter((l) => /dpkg: error|depends on|dependency problems/.test(l)).slice(0, 15), ...lines.slice(-15)].join("\n");
      })
      .join("\n");
    // debootstrap stopped midway (by the deadline) leaves /proc mounted in the chroot: rm would fail
    // with EBUSY and hide the real error.
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m.startsWith(`${root}/`))
      .reverse();
    for (const m of mounts) {
      try {
        execFileSync("umount", ["-l", m], { stdio: "ignore", timeout: 10_000 });
      } catch {
        // Left for the next run's rm to report.
      }
    }
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`building the guest image failed: ${(err as Error).message}\n${tail}`);
  }
}
