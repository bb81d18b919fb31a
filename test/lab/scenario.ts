/**
 * The machine lab: whole machine lives with real firmware, a real kernel and real cloud-init,
 * against the real edgejoin server. Shared by `test/lab/machine-life.test.ts` (CI) and
 * `npm run lab` (a person watching): one scenario, two audiences.
 *
 * Built on netlab.ts (namespaces, the site's dnsmasq, QEMU with OVMF's own PXE); this file adds
 * the guest image, the k3s stand-ins in `/artifacts/`, the admin's API calls, a watch that turns
 * the server log, dnsmasq's log and the serial consoles into a per-machine timeline, and reading
 * a powered-off machine's disk.
 */
import Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  fstatSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureGuestImage, type GuestImage } from "../helpers/guest-image.js";
import { installedDisks, placeInstaller } from "./installer-standin.js";
import { requireTools } from "../helpers/tools.js";
import { assertLabHost, diskRequirements, netbootRequirements, NetLab, openSite, run, waitFor, type Machine, type Site } from "../helpers/netlab.js";

/** The k3s version the lab's clusters ask for; the stand-in binary claims to be it. */
export const labK3sVersion = "v1.31.4+k3s1";

/** The cloud-image installer the lab's clusters boot: the guest's own kernel and initrd from `/artifacts/`. */
export const labInstaller = {
  kind: "cloud-image",
  kernel_url: "vmlinuz",
  initrd_urls: ["initrd.img"],
  kernel_args: "root=/dev/vda console=ttyS0",
} as const;

const standinDir = fileURLToPath(new URL("./k3s-standin/", import.meta.url));

/** One boot of one machine (a reboot is a new boot of the same MAC). */
type Boot = { name: string; mac: string; poweredOnAt: number; serialLog: string; serialOffset: number; seen: Map<string, number> };

/** A mark on a boot's timeline. */
export type BootMark = { boot: string; at: number; what: string };

const seconds = (ms: number) => `${(ms / 1000).toFixed(1).padStart(6)} s`;

/**
 * Follows the lab's logs while machines boot and marks each phase on the timeline of the boot
 * it belongs to: DHCP (dnsmasq's log), TFTP and HTTP (edgejoin's log; requests carry the client
 * address, mapped to a MAC through DHCP acks), and what the serial console shows.
 */
export class BootWatch {
  readonly marks: BootMark[] = [];
  readonly #boots: Boot[] = [];
  readonly #ipToMac = new Map<string, string>();
  readonly #machineToMac = new Map<number, string>();
  readonly #offsets = new Map<string, number>();
  /** dnsmasq transaction id → what asked: firmware PXE, iPXE, or the OS's DHCP client. */
  readonly #dhcpClient = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly lab: NetLab,
    private readonly site: Site,
    private readonly onMark: (mark: BootMark, line: string) => void = () => {},
  ) {
    this.#timer = setInterval(() => this.poll(), 250);
  }

  /** Start a new timeline for `machine` (its power-on is second 0). */
  powerOn(machine: Machine): void {
    const boot: Boot = {
      name: machine.name,
      mac: machine.mac,
      poweredOnAt: machine.poweredOnAt,
      serialLog: machine.serialLog,
      serialOffset: 0,
      seen: new Map(),
    };
    this.#boots.push(boot);
    this.#mark(boot, "power on", machine.poweredOnAt);
  }

  /** Mark something the scenario itself did or saw (approval, power-off) on `mac`'s current boot. */
  note(mac: string, what: string, at = Date.now()): void {
    const boot = this.#bootOf(mac, at);
    if (boot) this.#mark(boot, what, at);
  }

  /** The marks of boot `name`, in time order. */
  of(name: string): BootMark[] {
    return this.marks.filter((m) => m.boot === name).sort((a, b) => a.at - b.at);
  }

  /** Every boot's timeline, seconds since its power-on. */
  format(): string {
    return this.#boots
      .map((b) => [`${b.name} (${b.mac}), seconds since power-on:`, ...this.of(b.name).map((m) => `  ${seconds(m.at - b.poweredOnAt)}  ${m.what}`)].join("\n"))
      .join("\n\n");
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.poll();
  }

  /** Read what every log gained since the last poll. */
  poll(): void {
    if (this.site.dnsmasq) for (const line of this.#newLines(this.site.dnsmasq.logFile)) this.#dnsmasqLine(line);
    this.#retryUnplaced();
    for (const line of this.#newLines(this.site.edgejoin.process.logFile)) this.#serverLine(line);
    for (const boot of this.#boots) this.#serial(boot);
  }

  #newLines(file: string): string[] {
    if (!existsSync(file)) return [];
    const fd = openSync(file, "r");
    try {
      const from = this.#offsets.get(file) ?? 0;
      const size = fstatSync(fd).size;
      if (size <= from) return [];
      const buf = Buffer.alloc(size - from);
      readSync(fd, buf, 0, buf.length, from);
      const text = buf.toString("latin1");
      // Keep a line cut mid-write for the next poll.
      const end = text.lastIndexOf("\n") + 1;
      this.#offsets.set(file, from + end);
      return text
        .slice(0, end)
        .split("\n")
        .filter((l) => l !== "");
    } finally {
      closeSync(fd);
    }
  }

  /** The boot of `mac` running at `at` (the latest one powered on before it). */
  #bootOf(mac: string | undefined, at: number): Boot | undefined {
    if (!mac) return undefined;
    return [...this.#boots].reverse().find((b) => b.mac === mac && b.poweredOnAt <= at);
  }

  #mark(boot: Boot, what: string, at = Date.now()): void {
    const mark = { boot: boot.name, at, what };
    this.marks.push(mark);
    // netlab marks power-on itself.
    if (what !== "power on") this.lab.timeline.mark(`${boot.name}: ${what}`, at);
    this.onMark(mark, `[${boot.name} ${seconds(at - boot.poweredOnAt).trim()}] ${what}`);
  }

  /** Mark `what` once per boot; later occurrences only count. */
  #once(boot: Boot, key: string, what: string, at: number): void {
    const n = (boot.seen.get(key) ?? 0) + 1;
    boot.seen.set(key, n);
    if (n === 1) this.#mark(boot, what, at);
  }

  #dnsmasqLine(line: string): void {
    const m = /dnsmasq-dhcp\[\d+\]: (\d+) (.*)$/.exec(line);
    if (!m) return;
    const [, xid, rest] = m as unknown as [string, string, string];
    if (/^vendor class: PXEClient/.test(rest) && !this.#dhcpClient.has(xid)) this.#dhcpClient.set(xid, "firmware PXE");
    if (/^user class: iPXE/.test(rest)) this.#dhcpClient.set(xid, "iPXE");
    const ack = /^DHCPACK\(\S+\) (\d+\.\d+\.\d+\.\d+) ([0-9a-f:]{17})/.exec(rest);
    if (!ack) return;
    const [, ip, mac] = ack as unknown as [string, string, string];
    this.#ipToMac.set(ip, mac);
    const boot = this.#bootOf(mac, Date.now());
    const who = this.#dhcpClient.get(xid) ?? "Linux dhclient";
    if (boot) this.#once(boot, `dhcp ${who}`, `DHCP ack for ${who}: ${ip}`, Date.now());
  }

  #serverLine(line: string): void {
    if (!line.startsWith("{")) return;
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (!this.#serverRecord(l) && typeof l.time === "number" && (l.ip ?? l.client) !== undefined) this.#unplaced.push(l);
  }

  /** Lines whose client address had no DHCP lease on record yet; tried again on later polls. */
  #unplaced: Record<string, unknown>[] = [];

  #retryUnplaced(): void {
    const now = Date.now();
    const waiting = this.#unplaced;
    this.#unplaced = [];
    for (const l of waiting) {
      if (!this.#serverRecord(l) && now - (l.time as number) < 120_000) this.#unplaced.push(l);
    }
  }

  /** Mark one server log record on its machine's timeline; false when it cannot be placed yet. */
  #serverRecord(l: Record<string, unknown>): boolean {
    const at = typeof l.time === "number" ? l.time : Date.now();
    const ipMac = (ip: unknown) => (typeof ip === "string" ? this.#ipToMac.get(ip.replace(/:\d+$/, "")) : undefined);
    if (l.msg === "machine enrolled" && typeof l.machineId === "number" && typeof l.mac === "string") {
      this.#machineToMac.set(l.machineId, l.mac);
      const boot = this.#bootOf(l.mac, at);
      if (boot) this.#mark(boot, `enrolled as machine ${l.machineId} (${String(l.state)})`, at);
      return true;
    }
    if (l.msg === "node event" && typeof l.machineId === "number") {
      const boot = this.#bootOf(this.#machineToMac.get(l.machineId), at);
      if (boot) this.#mark(boot, `event ${String(l.type)}`, at);
      return true;
    }
    if (l.msg === "TFTP transfer done") {
      const boot = this.#bootOf(ipMac(l.client), at);
      if (boot) this.#once(boot, `tftp ${String(l.file)}`, `TFTP ${String(l.file)} (${String(l.bytes)} bytes)`, at);
      return boot !== undefined;
    }
    if (l.msg !== "request" || typeof l.path !== "string") return true;
    const path = l.path;
    const seedMac = /^\/cloud-init\/([0-9a-f:]{17})\//.exec(path)?.[1];
    const boot = this.#bootOf(seedMac ?? ipMac(l.ip), at);
    if (!boot) return false;
    const shown = path.replace(/^\/cloud-init\/[0-9a-f:]{17}\//, "/cloud-init/MAC/");
    const what = `${String(l.method)} ${shown} → ${String(l.status)}`;
    // Each /boot.ipxe is a step of its own (the bare chain, then the identified request).
    if (path === "/boot.ipxe") this.#mark(boot, what, at);
    // "node event" lines name the type; the request adds nothing.
    else if (path !== "/api/v1/node/events") this.#once(boot, what, what, at);
    return true;
  }

  #serial(boot: Boot): void {
    if (!existsSync(boot.serialLog)) return;
    const text = readFileSync(boot.serialLog, "latin1");
    const fresh = text.slice(boot.serialOffset);
    const end = fresh.lastIndexOf("\n") + 1;
    boot.serialOffset += end;
    for (const raw of fresh.slice(0, end).split("\n")) {
      const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").trim();
      const now = Date.now();
      const seen: [RegExp, string][] = [
        [/BdsDxe: starting Boot\w+ "([^"]+)"/, "firmware starts $1"],
        [/^edgejoin: (installing .*)$/, "iPXE: $1"],
        [/^edgejoin: (.* is installed - booting from its local disk)$/, "iPXE: $1"],
        [/Linux version \d/, "kernel running"],
        [/Cloud-init v\. [\d.]+ running 'init-local'/, "cloud-init started (init-local)"],
        [/Cloud-init v\. [\d.]+ running 'modules:final'/, "cloud-init final stage (runcmd)"],
        [/Cloud-init v\. [\d.]+ finished/, "cloud-init finished"],
        [/\S+ login:/, "login prompt"],
        [/Kernel panic/, "KERNEL PANIC"],
        // The stand-in installer's and the neighbour's own console lines.
        [/^edgejoin-installer: (started|disks written.*|done - rebooting|FAILED.*)$/, "installer: $1"],
        [/^edgejoin-neighbour: (up at \S+|captured: .*|seed of .*|stolen: .*)$/, "neighbour: $1"],
      ];
      for (const [re, label] of seen) {
        const m = re.exec(line);
        if (m) {
          const what = m[0].replace(re, label);
          this.#once(boot, what, what, now);
        }
      }
    }
  }
}

/** A lab with edgejoin, the site's DHCP, the guest image in `/artifacts/` and an admin client. */
export type MachineLab = {
  lab: NetLab;
  site: Site;
  image: GuestImage;
  watch: BootWatch;
  /** Call edgejoin's admin API from inside the LAN namespace. */
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>;
  /** A machine row as edgejoin stores it, read straight from its database. */
  machine(mac: string): { id: number; mac: string; state: string; role: string | null; cluster_id: number | null } | undefined;
  /**
   * Power on a machine on tap `tap`. Its disk is a qcow2 overlay of the guest image (a machine
   * staged with a cloud image) and its EFI system partition the image's, read-only; `blank`
   * gives it two empty disks for an installer to write instead; `disk` and `esp` name disks an
   * earlier power-on left (a reboot).
   */
  powerOn(opts: { name: string; mac: string; tap: number; disk?: string; esp?: string; blank?: boolean }): Promise<Machine>;
  /** ACPI power button: the guest shuts down cleanly and QEMU exits. */
  powerOff(machine: Machine, timeoutMs?: number): Promise<void>;
  /** Files read from a powered-off machine's disk (its overlay), by path inside the guest. */
  readDisk(machine: Machine, paths: string[]): Promise<Record<string, string | undefined>>;
  /** Keep logs and timelines under `.lab/runs/`; returns the folder. */
  keep(): string;
  close(): Promise<void>;
};

/** Hosts tools the lab needs beyond netlab's, with their Debian packages. */
const labTools = { debugfs: "e2fsprogs", "qemu-img": "qemu-utils", debootstrap: "debootstrap", "mkfs.ext4": "e2fsprogs", busybox: "busybox-static" };

/** Place a file in the artifacts folder: a hard link when the cache is on the same file system. */
function place(from: string, to: string): void {
  mkdirSync(join(to, ".."), { recursive: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/**
 * Build (or reuse) the guest image, then start a site with `taps` machine ports: edgejoin with
 * the image's kernel + initrd and the k3s stand-ins in its artifacts folder, and the site's dnsmasq.
 */
export async function openMachineLab(opts: {
  taps: number;
  onMark?: (mark: BootMark, line: string) => void;
  log?: (line: string) => void;
}): Promise<MachineLab> {
  assertLabHost([...netbootRequirements, ...diskRequirements]);
  requireTools(labTools);
  const image = await ensureGuestImage({ log: opts.log });
  const lab = await NetLab.open();
  try {
    const artifactsDir = lab.path("artifacts");
    place(image.kernel, join(artifactsDir, "vmlinuz"));
    place(image.initrd, join(artifactsDir, "initrd.img"));
    placeInstaller(artifactsDir, image);
    place(join(standinDir, "install.sh"), join(artifactsDir, "k3s/install.sh"));
    const binary = join(artifactsDir, `k3s/${labK3sVersion}/k3s`);
    mkdirSync(join(binary, ".."), { recursive: true });
    writeFileSync(binary, readFileSync(join(standinDir, "k3s"), "utf8").replace("@K3S_VERSION@", labK3sVersion));
    chmodSync(binary, 0o755);

    const adminToken = randomBytes(24).toString("hex");
    const site = await openSite(lab, {
      machines: opts.taps,
      edgejoinEnv: { EDGEJOIN_ARTIFACTS_DIR: artifactsDir, EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_K3S_VERSION: labK3sVersion },
    });
    const watch = new BootWatch(lab, site, opts.onMark);
    // In a folder of their own: keep() copies the run folder's files and cannot copy a socket.
    mkdirSync(lab.path("qmp"));
    const qmpSocket = (name: string) => lab.path(`qmp/${name}`);
    let db: Database.Database | undefined;

    const api: MachineLab["api"] = async (method, path, body, token = adminToken) => {
      // The node API answers only over https, trusting edgejoin's CA, as the agent does.
      const node = /^\/api\/v1\/(enroll$|node\/)/.test(path.split("?")[0]!);
      const base = node ? site.edgejoin.nodeUrl : site.publicUrl;
      const init = {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      };
      const res = await lab.fetchIn(site.lan, `${base}${path}`, init, node ? site.edgejoin.caFile : undefined);
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        parsed = res.body;
      }
      return { status: res.status, body: parsed as never };
    };

    return {
      lab,
      site,
      image,
      watch,
      api,
      machine: (mac) => {
        db ??= new Database(site.edgejoin.dbFile, { readonly: true, fileMustExist: true });
        return db.prepare("select id, mac, state, role, cluster_id from machines where mac = ?").get(mac) as ReturnType<MachineLab["machine"]>;
      },
      powerOn: async (m) => {
        let overlay = m.disk;
        let esp = m.esp ? `file=${m.esp},format=qcow2` : `file=${image.esp},format=raw,readonly=on`;
        if (m.blank) {
          // Named as netlab names an overlay, so readDisk and a reboot find it.
          overlay = lab.path(`${m.name}.overlay.qcow2`);
          const espDisk = lab.path(`${m.name}.esp.qcow2`);
          await run("qemu-img", ["create", "-q", "-f", "qcow2", overlay, `${installedDisks.rootMiB}M`]);
          await run("qemu-img", ["create", "-q", "-f", "qcow2", espDisk, `${installedDisks.espMiB}M`]);
          esp = `file=${espDisk},format=qcow2`;
        }
        const machine = await lab.machine({
          name: m.name,
          ns: site.lan,
          tap: site.taps[m.tap]!,
          mac: m.mac,
          firmware: "uefi",
          memoryMb: 768,
          disk: overlay ? { image: overlay, format: "qcow2", overlay: false } : { image: image.rootfs, format: "raw" },
          extraArgs: [
            // The machine's EFI system partition (systemd-boot): where "boot from local disk" lands.
            "-drive",
            `${esp},if=none,id=esp`,
            "-device",
            "virtio-blk-pci,drive=esp,bootindex=2",
            "-qmp",
            `unix:${qmpSocket(m.name)},server=on,wait=off`,
            // As many sites do in firmware setup: no IPv6 network boot. Each NIC boot entry that
            // fails costs tens of seconds before the firmware reaches the disk.
            "-fw_cfg",
            "name=opt/org.tianocore/IPv6Support,string=no",
          ],
        });
        watch.powerOn(machine);
        return machine;
      },
      powerOff: async (machine, timeoutMs = 90_000) => {
        await qmp(qmpSocket(machine.name), "system_powerdown");
        const exited = await Promise.race([machine.process.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), timeoutMs))]);
        if (!exited) throw new Error(`${machine.name} did not power off within ${timeoutMs / 1000} s of the ACPI power button`);
        watch.note(machine.mac, "powered off (clean shutdown)");
      },
      readDisk: async (machine, paths) => {
        const raw = lab.path(`${machine.name}.disk.raw`);
        await run("qemu-img", ["convert", "-O", "raw", lab.path(`${machine.name}.overlay.qcow2`), raw], { timeoutMs: 120_000 });
        const out: Record<string, string | undefined> = {};
        try {
          for (const p of paths) {
            const dump = lab.path(`${machine.name}.disk-file`);
            // debugfs prints errors on stderr and exits 0; a missing file leaves no dump.
            await run("debugfs", ["-R", `dump -p ${p} ${dump}`, raw], { timeoutMs: 30_000 });
            out[p] = existsSync(dump) ? readFileSync(dump, "utf8") : undefined;
            rmSync(dump, { force: true });
          }
        } finally {
          rmSync(raw, { force: true });
        }
        return out;
      },
      keep: () => {
        watch.poll();
        writeFileSync(lab.path("timeline.machines.txt"), `${watch.format()}\n`);
        const stamp = new Date().toISOString().replace(/[:.]/g, "-");
        return lab.keep(`runs/${stamp}`);
      },
      close: async () => {
        watch.stop();
        db?.close();
        await lab.close();
      },
    };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

/** Send one QMP command to a QEMU machine's control socket. */
async function qmp(socket: string, command: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const conn = connect(socket);
    let buffer = "";
    let step = 0;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`QMP ${command} on ${socket}: no answer`));
    }, 10_000);
    conn.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    conn.on("data", (chunk) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const msg = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
        buffer = buffer.slice(nl + 1);
        if (msg.error) {
          clearTimeout(timer);
          conn.destroy();
          reject(new Error(`QMP ${command}: ${JSON.stringify(msg.error)}`));
          return;
        }
        if (step === 0 && msg.QMP) {
          step = 1;
          conn.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (step === 1 && "return" in msg) {
          step = 2;
          conn.write(`${JSON.stringify({ execute: command })}\n`);
        } else if (step === 2 && "return" in msg) {
          clearTimeout(timer);
          conn.end();
          resolve();
          return;
        }
      }
    });
  });
}

/** Wait until `mac` is stored in `state`, failing early when its machine or the server dies. */
export async function waitForState(
  ml: MachineLab,
  machine: Machine,
  state: string,
  timeoutMs: number,
): Promise<NonNullable<ReturnType<MachineLab["machine"]>>> {
  return waitFor(
    `${machine.name} to be ${state}`,
    () => {
      const row = ml.machine(machine.mac);
      return row?.state === state ? row : undefined;
    },
    { timeoutMs, intervalMs: 500, failIf: () => ml.site.edgejoin.process.death() ?? machine.process.death() ?? pxeFailure(machine) },
  );
}

/** The firmware's PXE error on `machine`'s console, if its network boot failed. */
export function pxeFailure(machine: Machine): string | undefined {
  const error = /PXE-E\d+: [^\n]*/.exec(machine.serial())?.[0];
  return error && /failed to (load|start) Boot\w+ "UEFI PXEv4/.test(machine.serial())
    ? `${machine.name}'s firmware PXE boot failed (${error.trim()}); see the DHCP log for a DHCPNAK`
    : undefined;
}
