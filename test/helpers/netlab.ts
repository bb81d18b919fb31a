/**
 * Network labs for end-to-end tests: network namespaces joined by bridges, taps and veths,
 * processes run inside them (edgejoin, dnsmasq as a site's DHCP server, tcpdump), QEMU machines
 * booting real firmware, a per-phase timeline, and cleanup of all of it even when a test fails.
 *
 * Every address lives inside namespaces the lab creates; nothing touches the host's own network.
 * Every process is started through `setpriv --pdeathsig KILL`, so a test runner that is killed
 * outright still takes its QEMU machines and servers with it; namespaces left by such a run are
 * swept by the next `NetLab.open()`.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The repository root, resolved from this module so no machine path is written anywhere. */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Files from Debian packages that labs boot with. */
export const labFiles = {
  ovmfCode: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  ovmfVars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
  ipxeDir: "/usr/lib/ipxe",
} as const;

/** Something a lab needs from the host, and the Debian package that provides it. */
export type LabRequirement = { what: string; pkg: string; check: () => boolean };

function onPath(name: string): boolean {
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
  return dirs.some((d) => d !== "" && existsSync(join(d, name)));
}

const command = (name: string, pkg: string): LabRequirement => ({ what: `the \`${name}\` command`, pkg, check: () => onPath(name) });
const file = (path: string, pkg: string): LabRequirement => ({ what: path, pkg, check: () => existsSync(path) });

/** What every netboot lab needs; a test adds its own (e.g. `qemu-img` for disk overlays). */
export const netbootRequirements: LabRequirement[] = [
  command("ip", "iproute2"),
  command("setpriv", "util-linux"),
  command("qemu-system-x86_64", "qemu-system-x86"),
  file(labFiles.ovmfCode, "ovmf"),
  file(labFiles.ovmfVars, "ovmf"),
  file(`${labFiles.ipxeDir}/snponly.efi`, "ipxe"),
  file(`${labFiles.ipxeDir}/ipxe.efi`, "ipxe"),
  file(`${labFiles.ipxeDir}/undionly.kpxe`, "ipxe"),
  command("dnsmasq", "dnsmasq-base"),
  command("tcpdump", "tcpdump"),
];

/** The other DHCP servers the README has examples for. */
export const otherDhcpRequirements = {
  "isc-dhcpd": [command("dhcpd", "isc-dhcp-server")],
  kea: [command("kea-dhcp4", "kea-dhcp4-server")],
} satisfies Record<string, LabRequirement[]>;

/** A disk overlay needs qemu-img. */
export const diskRequirements: LabRequirement[] = [command("qemu-img", "qemu-utils")];

/**
 * Throw one clear error naming every missing package (a lab test must fail, never skip, when the
 * host cannot run it), and refuse to run without root (namespaces and taps need CAP_NET_ADMIN).
 */
export function assertLabHost(requirements: LabRequirement[] = netbootRequirements): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("must run as root: network namespaces, bridges and taps need CAP_NET_ADMIN");
  const missing = requirements.filter((r) => !r.check());
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))];
    problems.push(`missing ${missing.map((m) => m.what).join(", ")}: run \`apt-get install ${pkgs.join(" ")}\``);
  }
  if (problems.length > 0) throw new Error(`this lab cannot run on this host: ${problems.join("; ")}`);
}

/** Run a command to completion; its stderr is in the error when it fails. */
export async function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { timeout: opts.timeoutMs ?? 15_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`\`${[cmd, ...args].join(" ")}\` failed: ${(e.stderr ?? "").trim() || e.message}`);
  }
}

/**
 * Poll `probe` until it returns something other than undefined, at most `timeoutMs`. `failIf` is
 * checked on every round so a dead process fails the wait at once instead of at its deadline.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; failIf?: () => string | undefined },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const failure = opts.failIf?.();
    if (failure) throw new Error(`while waiting for ${what}: ${failure}`);
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

/** The last `lines` lines of a text file, for error messages. */
export function tail(path: string, lines = 15): string {
  if (!existsSync(path)) return "(no output)";
  return readFileSync(path, "utf8")
    .replace(/\x1b\[[0-9;]*m/g, "")
    .trimEnd()
    .split("\n")
    .slice(-lines)
    .join("\n");
}

/** Named moments of a lab run, printed as offsets from its start. */
export class Timeline {
  readonly startedAt: number;
  readonly marks: { name: string; at: number }[] = [];

  constructor(startedAt = Date.now()) {
    this.startedAt = startedAt;
  }

  /** Record `name` at `at` (epoch ms; default now), e.g. a timestamp read from a log or capture. */
  mark(name: string, at = Date.now()): void {
    this.marks.push({ name, at });
  }

  /** Milliseconds from `from` to `to`, both mark names. */
  between(from: string, to: string): number {
    const a = this.marks.find((m) => m.name === from);
    const b = this.marks.find((m) => m.name === to);
    if (!a || !b) throw new Error(`timeline has no mark ${a ? to : from}`);
    return b.at - a.at;
  }

  /** One line per mark, in time order: `+  12.3 s  name`. */
  format(): string {
    return [...this.marks]
      .sort((a, b) => a.at - b.at)
      .map((m) => `+${((m.at - this.startedAt) / 1000).toFixed(1).padStart(6)} s  ${m.name}`)
      .join("\n");
  }
}

/** A process the lab started, its output going to one log file. */
export class LabProcess {
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
      child.once("error", (err) => {
        this.exit = { code: null, signal: null };
        writeFileSync(logFile, `\nspawn failed: ${err.message}\n`, { flag: "a" });
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Why this process is no longer running, or undefined while it runs. */
  death(): string | undefined {
    if (!this.exit) return undefined;
    return `${this.name} exited (${this.exit.signal ?? `code ${this.exit.code}`}); last output:\n${tail(this.logFile)}`;
  }

  /** The whole log so far. */
  output(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8") : "";
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. Only ever this PID. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.exit || this.child.pid === undefined) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** One side of a veth pair. */
export type VethEnd = { ns: string; name: string; bridge?: string; addresses?: string[] };

/** A running edgejoin server and where it keeps its state. */
export type EdgejoinServer = {
  process: LabProcess;
  publicUrl: string;
  /** The node API's https base (the public URL's host on EDGEJOIN_HTTPS_PORT), as user-data tells agents. */
  nodeUrl: string;
  /** edgejoin's CA certificate, made at its first start: what agents (and `fetchIn`) trust for nodeUrl. */
  caFile: string;
  dataDir: string;
  dbFile: string;
  /** Its pino log so far, one object per JSON line (other lines dropped). */
  logLines(): LogLine[];
};

/** One pino log line. */
export type LogLine = { time: number; level: number; msg: string; [key: string]: unknown };

/** Parse pino's JSON lines, skipping anything else the process printed. */
export function parseJsonLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // A line cut mid-write by the poll; the next read has it whole.
    }
  }
  return out;
}

/** A packet capture running inside a namespace. */
export type Capture = { file: string; process: LabProcess; stop(): Promise<Packet[]> };

/** What a QEMU machine is made of; defaults give a diskless UEFI machine whose firmware PXE-boots. */
export type MachineOptions = {
  name: string;
  /** Namespace and tap (already on the lab bridge) its NIC is plugged into. */
  ns: string;
  tap: string;
  mac: string;
  firmware?: "uefi" | "bios";
  /** SMBIOS type 1 values iPXE reads as ${serial}, ${uuid}, ${manufacturer}, ${product}. */
  smbios?: { serial?: string; uuid?: string; manufacturer?: string; product?: string };
  memoryMb?: number;
  cpus?: number;
  /**
   * `firmware` (UEFI's default): an empty NIC option ROM, so OVMF's own PXE client runs (as on a
   * NUC) and fetches iPXE over TFTP. `ipxe` (BIOS's default: SeaBIOS has no PXE client of its
   * own): QEMU's iPXE ROM, which is iPXE already and skips the TFTP leg.
   */
  nicRom?: "firmware" | "ipxe";
  nicModel?: "virtio-net-pci" | "e1000";
  /** A disk: `image` booted through a per-run qcow2 overlay (default) so the image stays clean. */
  disk?: { image: string; format?: "qcow2" | "raw"; overlay?: boolean };
  /** Which device the firmware tries first. */
  bootFrom?: "network" | "disk";
  /** Power off instead of rebooting (for a lab that waits for the installer to finish). */
  noReboot?: boolean;
  extraArgs?: string[];
};

/** A running QEMU machine. */
export type Machine = {
  name: string;
  mac: string;
  process: LabProcess;
  serialLog: string;
  poweredOnAt: number;
  /** Console text so far, colour codes removed. */
  serial(): string;
  stop(): Promise<void>;
};

/** QEMU's option syntax doubles a comma inside a value. */
const qemuValue = (v: string) => v.replaceAll(",", ",,");

/**
 * One lab run: owns a temp folder, the namespaces and processes it creates, and a timeline.
 * `close()` removes all of it; `keep()` copies logs, consoles and captures to `.lab/` first.
 */
export class NetLab {
  readonly timeline = new Timeline();
  readonly #namespaces: string[] = [];
  readonly #processes: LabProcess[] = [];
  #closed = false;

  private constructor(
    readonly runId: string,
    readonly dir: string,
  ) {}

  /** Start a lab run. Sweeps namespaces left by earlier runs whose test process is gone. */
  static async open(): Promise<NetLab> {
    assertLabHost([command("ip", "iproute2"), command("setpriv", "util-linux")]);
    await sweepStaleNamespaces();
    const runId = `${process.pid}-${randomBytes(3).toString("hex")}`;
    const dir = mkdtempSync(join(tmpdir(), `edgejoin-lab-${runId}-`));
    return new NetLab(runId, dir);
  }

  /** A path inside this run's temp folder. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Create a network namespace with loopback up; its name is unique to this run. */
  async namespace(role: string): Promise<string> {
    const name = `${nsPrefix}${this.runId}-${role}`;
    try {
      await run("ip", ["netns", "add", name]);
    } catch (err) {
      throw new Error(`cannot create network namespace ${name} (does this kernel/container allow network namespaces?): ${(err as Error).message}`);
    }
    this.#namespaces.push(name);
    await run("ip", ["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** A bridge inside `ns` carrying `addresses` (CIDR form; IPv6 ones skip duplicate detection). */
  async bridge(ns: string, name: string, addresses: string[] = []): Promise<void> {
    await run("ip", ["-n", ns, "link", "add", name, "type", "bridge"]);
    await this.#address(ns, name, addresses);
    await run("ip", ["-n", ns, "link", "set", name, "up"]);
  }

  /** A tap inside `ns`, plugged into `bridge`, for a QEMU NIC. */
  async tap(ns: string, name: string, bridge: string): Promise<void> {
    await run("ip", ["-n", ns, "tuntap", "add", "dev", name, "mode", "tap"]);
    await run("ip", ["-n", ns, "link", "set", name, "master", bridge, "up"]);
  }

  /** A veth pair made directly between two namespaces (never in the host's own). */
  async veth(a: VethEnd, b: VethEnd): Promise<void> {
    await run("ip", ["-n", a.ns, "link", "add", a.name, "type", "veth", "peer", "name", b.name, "netns", b.ns]);
    for (const end of [a, b]) {
      if (end.bridge) await run("ip", ["-n", end.ns, "link", "set", end.name, "master", end.bridge]);
      await this.#address(end.ns, end.name, end.addresses ?? []);
      await run("ip", ["-n", end.ns, "link", "set", end.name, "up"]);
    }
  }

  async #address(ns: string, dev: string, addresses: string[]): Promise<void> {
    for (const a of addresses) {
      // Duplicate address detection would hold an IPv6 address back for ~1 s; nothing else is on this link.
      await run("ip", ["-n", ns, "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
    }
  }

  /**
   * Run `argv` inside `ns`; stdout and stderr go to `<name>.log` in the run folder. The process
   * dies with the test runner (parent-death signal), and `close()` stops it by its PID.
   */
  spawn(ns: string, name: string, argv: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): LabProcess {
    if (this.#closed) throw new Error("lab is closed");
    const logFile = this.path(`${name}.log`);
    const fd = openSync(logFile, "a");
    try {
      const child = spawn("ip", ["netns", "exec", ns, "setpriv", "--pdeathsig", "KILL", "--", ...argv], {
        stdio: ["ignore", fd, fd],
        env: { ...process.env, ...opts.env },
        cwd: opts.cwd ?? repoRoot,
      });
      const proc = new LabProcess(name, child, logFile);
      this.#processes.push(proc);
      return proc;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * dnsmasq with `conf` (see `labDnsmasqConf`) as the site's DHCP server in `ns`; resolves once
   * it has bound its sockets. Its log (with `log-dhcp`, every offer and its options) is `<name>.log`.
   */
  async dnsmasq(ns: string, conf: string, name = "dnsmasq"): Promise<LabProcess> {
    const confFile = this.path(`${name}.conf`);
    writeFileSync(confFile, conf);
    const proc = this.spawn(ns, name, [
      "dnsmasq",
      "--keep-in-foreground",
      `--conf-file=${confFile}`,
      "--log-facility=-",
      "--pid-file=",
      // Staying root with root's group keeps the parent-death signal (a credential change clears it).
      "--user=root",
      "--group=root",
      `--dhcp-leasefile=${this.path(`${name}.leases`)}`,
    ]);
    // It logs this after binding its sockets and before answering anything.
    await waitFor(`${name} to start`, () => (/started, version/.test(proc.output()) ? true : undefined), {
      timeoutMs: 10_000,
      failIf: () => proc.death(),
    });
    return proc;
  }

  /** ISC dhcpd with `conf` (a whole dhcpd.conf) on `iface` in `ns`, in the foreground, logging to `<name>.log`. */
  async iscDhcpd(ns: string, iface: string, conf: string, name = "dhcpd"): Promise<LabProcess> {
    assertLabHost(otherDhcpRequirements["isc-dhcpd"]);
    writeFileSync(this.path(`${name}.conf`), conf);
    writeFileSync(this.path(`${name}.leases`), "");
    const proc = this.spawn(ns, name, [
      "dhcpd",
      "-f",
      "-d",
      "-4",
      "-cf",
      this.path(`${name}.conf`),
      "-lf",
      this.path(`${name}.leases`),
      "-pf",
      this.path(`${name}.pid`),
      iface,
    ]);
    await waitFor(`${name} to start`, () => (new RegExp(`Sending on +\\S+/${iface}`).test(proc.output()) ? true : undefined), {
      timeoutMs: 10_000,
      failIf: () => proc.death(),
    });
    return proc;
  }

  /** Kea's DHCPv4 server with `conf` (a whole kea-dhcp4 JSON configuration) in `ns`, logging to `<name>.log`. */
  async kea(ns: string, conf: string, name = "kea-dhcp4"): Promise<LabProcess> {
    assertLabHost(otherDhcpRequirements.kea);
    writeFileSync(this.path(`${name}.json`), conf);
    // Kea keeps its PID and lock files in system folders unless told otherwise.
    const proc = this.spawn(ns, name, ["kea-dhcp4", "-c", this.path(`${name}.json`)], {
      env: { KEA_PIDFILE_DIR: this.dir, KEA_LOCKFILE_DIR: this.dir },
    });
    await waitFor(`${name} to start`, () => (/DHCP4_STARTED/.test(proc.output()) ? true : undefined), {
      timeoutMs: 15_000,
      failIf: () => proc.death(),
    });
    return proc;
  }

  /** Capture every frame on `iface` in `ns` to `<name>.pcap` (capture on a tap: bridged unicast is missed on the bridge). */
  async capture(ns: string, iface: string, name: string, filter: string[] = []): Promise<Capture> {
    const file = this.path(`${name}.pcap`);
    const proc = this.spawn(ns, `${name}.tcpdump`, ["tcpdump", "-Z", "root", "-i", iface, "-n", "-U", "-s", "0", "-w", file, ...filter]);
    await waitFor(`tcpdump on ${iface}`, () => (/listening on/.test(proc.output()) ? true : undefined), {
      timeoutMs: 10_000,
      failIf: () => proc.death(),
    });
    return {
      file,
      process: proc,
      stop: async () => {
        await proc.stop();
        return readPcap(file);
      },
    };
  }

  /** Boot a QEMU machine (TCG: KVM resets at iPXE's prompt on these hosts) with its serial console in `<name>.serial.log`. */
  async machine(opts: MachineOptions): Promise<Machine> {
    const firmware = opts.firmware ?? "uefi";
    const serialLog = this.path(`${opts.name}.serial.log`);
    const args = [
      "qemu-system-x86_64",
      "-name",
      opts.name,
      "-machine",
      firmware === "uefi" ? "q35" : "pc",
      "-accel",
      "tcg",
      "-m",
      String(opts.memoryMb ?? 512),
      "-smp",
      String(opts.cpus ?? 1),
      "-display",
      "none",
      "-serial",
      `file:${serialLog}`,
      "-monitor",
      "none",
    ];
    if (firmware === "uefi") {
      // Each machine writes its own boot entries into its VARS; sharing one file corrupts it.
      const vars = this.path(`${opts.name}.OVMF_VARS.fd`);
      copyFileSync(labFiles.ovmfVars, vars);
      args.push("-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${labFiles.ovmfCode}`);
      args.push("-drive", `if=pflash,format=raw,unit=1,file=${vars}`);
    } else {
      // SeaBIOS mirrors its (and iPXE's) console to the serial port only when told which port.
      const sercon = this.path(`${opts.name}.sercon`);
      writeFileSync(sercon, Buffer.from([0xf8, 0x03]));
      args.push("-fw_cfg", `name=etc/sercon-port,file=${sercon}`);
    }
    const smbios = Object.entries(opts.smbios ?? {}).filter(([, v]) => v !== undefined);
    if (smbios.length > 0) args.push("-smbios", ["type=1", ...smbios.map(([k, v]) => `${k}=${qemuValue(v)}`)].join(","));

    const netBoot = (opts.bootFrom ?? "network") === "network";
    const nic = [
      opts.nicModel ?? "virtio-net-pci",
      "netdev=net0",
      `mac=${opts.mac}`,
      ...((opts.nicRom ?? (firmware === "uefi" ? "firmware" : "ipxe")) === "firmware" ? ["romfile="] : []),
      `bootindex=${netBoot ? 0 : 1}`,
    ];
    args.push("-netdev", `tap,id=net0,ifname=${opts.tap},script=no,downscript=no`, "-device", nic.join(","));
    // SeaBIOS reads -boot; OVMF reads the bootindex above. Both say the same.
    if (netBoot) args.push("-boot", "n");

    if (opts.disk) {
      let image = opts.disk.image;
      let format = opts.disk.format ?? "qcow2";
      if (opts.disk.overlay ?? true) {
        assertLabHost(diskRequirements);
        const overlay = this.path(`${opts.name}.overlay.qcow2`);
        // qemu-img resolves a relative backing file from the overlay's folder, not ours.
        await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", resolve(image), "-F", format, overlay]);
        image = overlay;
        format = "qcow2";
      }
      args.push("-drive", `file=${qemuValue(image)},format=${format},if=none,id=disk0`);
      args.push("-device", `virtio-blk-pci,drive=disk0,bootindex=${netBoot ? 1 : 0}`);
    }
    if (opts.noReboot) args.push("-no-reboot");
    args.push(...(opts.extraArgs ?? []));

    const poweredOnAt = Date.now();
    const proc = this.spawn(opts.ns, opts.name, args);
    this.timeline.mark(`${opts.name}: power on`, poweredOnAt);
    return {
      name: opts.name,
      mac: opts.mac,
      process: proc,
      serialLog,
      poweredOnAt,
      serial: () => (existsSync(serialLog) ? readFileSync(serialLog, "latin1").replace(/\x1b\[[0-9;]*[A-Za-z]/g, "") : ""),
      stop: () => proc.stop(),
    };
  }

  /**
   * Start the real edgejoin server (`node --import tsx server/main.ts`) inside `ns` with a fresh
   * data folder and an empty boot folder (so it serves Debian's iPXE binaries), logging at debug
   * level (one line per HTTP request); resolves once it says it is serving.
   */
  async edgejoin(ns: string, opts: { publicUrl: string; env?: Record<string, string>; name?: string }): Promise<EdgejoinServer> {
    const name = opts.name ?? "edgejoin";
    const dataDir = this.path(`${name}-data`);
    const bootDir = this.path(`${name}-boot`);
    mkdirSync(bootDir, { recursive: true });
    // /boot.ipxe answers a console message while the cluster's installer files are missing: give the
    // default installer stand-in files unless the test brings its own artifacts folder.
    const artifactsDir = opts.env?.EDGEJOIN_ARTIFACTS_DIR ?? this.path(`${name}-artifacts`);
    if (!opts.env?.EDGEJOIN_ARTIFACTS_DIR) {
      mkdirSync(join(artifactsDir, "ubuntu/casper"), { recursive: true });
      for (const f of ["ubuntu/casper/vmlinuz", "ubuntu/casper/initrd", "ubuntu/ubuntu-live-server-amd64.iso"]) writeFileSync(join(artifactsDir, f), "");
    }
    // The runner's own EDGEJOIN_* settings (a developer's shell) must not reach the lab's server; edgejoin reads "" as unset.
    const inherited = Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith("EDGEJOIN_"))
        .map((k) => [k, ""]),
    );
    const proc = this.spawn(ns, name, [process.execPath, "--import", "tsx", "server/main.ts"], {
      env: {
        ...inherited,
        EDGEJOIN_PUBLIC_URL: opts.publicUrl,
        EDGEJOIN_DATA_DIR: dataDir,
        EDGEJOIN_BOOT_DIR: bootDir,
        EDGEJOIN_IPXE_DIR: labFiles.ipxeDir,
        EDGEJOIN_ARTIFACTS_DIR: artifactsDir,
        EDGEJOIN_LOG_LEVEL: "debug",
        ...opts.env,
      },
    });
    const nodeUrl = new URL(opts.publicUrl);
    nodeUrl.protocol = "https:";
    nodeUrl.port = opts.env?.EDGEJOIN_HTTPS_PORT ?? "8443";
    const server: EdgejoinServer = {
      process: proc,
      publicUrl: opts.publicUrl,
      nodeUrl: nodeUrl.origin,
      caFile: join(dataDir, "tls", "ca.crt"),
      dataDir,
      dbFile: join(dataDir, "edgejoin.db"),
      logLines: () => parseJsonLines(proc.output()),
    };
    await waitFor(`${name} to serve`, () => server.logLines().find((l) => l.msg === "edgejoin is serving"), {
      timeoutMs: 30_000,
      failIf: () => proc.death(),
    });
    return server;
  }

  /**
   * An HTTP request made from inside `ns` (the test runner lives in the host's namespace and cannot
   * reach lab addresses itself), by a short-lived node process. `caFile` is a CA it trusts for
   * https (edgejoin's, for the node API).
   */
  async fetchIn(ns: string, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, caFile?: string) {
    const script =
      "const [u,i]=process.argv.slice(1);const r=await fetch(u,JSON.parse(i));" +
      "process.stdout.write(JSON.stringify({status:r.status,headers:Object.fromEntries(r.headers),body:await r.text()}))";
    const trust = caFile ? ["env", `NODE_EXTRA_CA_CERTS=${caFile}`] : [];
    const out = await run("ip", ["netns", "exec", ns, ...trust, process.execPath, "--input-type=module", "-e", script, url, JSON.stringify(init)], {
      timeoutMs: 20_000,
    });
    return JSON.parse(out) as { status: number; headers: Record<string, string>; body: string };
  }

  /**
   * Copy everything this run wrote (server and dnsmasq logs, serial consoles, captures, configs)
   * to `.lab/<label>-<run>/` in the repository (gitignored) and return that path.
   */
  keep(label: string): string {
    const dest = join(repoRoot, ".lab", `${label}-${this.runId}`);
    mkdirSync(dest, { recursive: true });
    for (const name of readdirSync(this.dir)) {
      const from = join(this.dir, name);
      // Firmware variable stores and disk images are large and say nothing a human reads; data
      // folders hold the run's private signing keys.
      if (/\.(fd|qcow2|raw|img|iso)$/.test(name) || statSync(from).isDirectory()) continue;
      cpSync(from, join(dest, name), { recursive: true });
    }
    writeFileSync(join(dest, "timeline.txt"), `${this.timeline.format()}\n`);
    return dest;
  }

  /** Stop every process (by PID), delete every namespace, remove the temp folder. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#processes.map((p) => p.stop()));
    for (const ns of this.#namespaces.reverse()) {
      await run("ip", ["netns", "del", ns]).catch(() => undefined);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const nsPrefix = "ejlab-";

/**
 * Delete `ejlab-<pid>-…` namespaces whose test process no longer exists. A process still inside
 * one was started by that dead run (the name is unique to it) and is stopped by its PID first.
 */
async function sweepStaleNamespaces(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${nsPrefix}(\\d+)-`).exec(name);
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner === process.pid || existsSync(`/proc/${owner}`)) continue;
    const leftovers = (await run("ip", ["netns", "pids", name]).catch(() => ""))
      .split("\n")
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
    for (const pid of leftovers) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await waitFor(`processes left in ${name} to exit`, () => (leftovers.every((pid) => !existsSync(`/proc/${pid}`)) ? true : undefined), {
      timeoutMs: 5_000,
      intervalMs: 100,
    }).catch(() => undefined);
    await run("ip", ["netns", "del", name]).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The site's DHCP server, configured the way the README tells users to.

/** Where a site's DHCP server sends netbooting machines. */
export type SiteNetboot = {
  /** edgejoin's IPv4 address: the TFTP server firmware fetches iPXE from. */
  edgejoinAddress: string;
  /** EDGEJOIN_PUBLIC_URL: iPXE is sent to `<publicUrl>/boot.ipxe`. */
  publicUrl: string;
  /** UEFI binary: `snponly.efi` drives the NIC through the firmware (works wherever the firmware PXE-boots); `ipxe.efi` brings iPXE's own drivers. */
  efiBinary?: "snponly.efi" | "ipxe.efi";
};

/**
 * The lines a site adds to its dnsmasq configuration. The README quotes this output for its
 * example values (a test checks it), and the netboot lab runs exactly these lines.
 */
export function dnsmasqNetbootConf(site: SiteNetboot): string {
  const efi = site.efiBinary ?? "snponly.efi";
  return [
    "# iPXE says so in its DHCP user-class; firmware PXE clients do not.",
    "dhcp-userclass=set:ipxe,iPXE",
    "# Option 93, client architecture: 0 = BIOS, 7 and 9 = x86-64 UEFI.",
    "dhcp-match=set:bios,option:client-arch,0",
    "dhcp-match=set:efi64,option:client-arch,7",
    "dhcp-match=set:efi64,option:client-arch,9",
    "# Firmware gets an iPXE binary from edgejoin's TFTP server...",
    `dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe,,${site.edgejoinAddress}`,
    `dhcp-boot=tag:!ipxe,tag:efi64,${efi},,${site.edgejoinAddress}`,
    "# ...and iPXE, asking again, gets the boot script: no loop.",
    `dhcp-boot=tag:ipxe,${site.publicUrl}/boot.ipxe`,
    "",
  ].join("\n");
}

/**
 * A whole dnsmasq configuration for a lab: no DNS, on one interface, router advertisements for a
 * ULA prefix (iPXE otherwise waits ~13 s for IPv6), DHCPv4 on `range` if given, then the site's
 * netboot lines from `dnsmasqNetbootConf` if given. Without `range` it only advertises the
 * prefix, next to another DHCP server.
 */
export function labDnsmasqConf(opts: { iface: string; range?: [string, string]; ula?: string; site?: SiteNetboot }): string {
  return [
    "port=0",
    `interface=${opts.iface}`,
    "bind-interfaces",
    ...(opts.range ? [`dhcp-range=${opts.range[0]},${opts.range[1]},1h`] : []),
    ...(opts.ula ? [`dhcp-range=${opts.ula},ra-only`, "enable-ra"] : []),
    // Without it dnsmasq pings each address for 3 s before offering it.
    "no-ping",
    "log-dhcp",
    ...(opts.site ? [dnsmasqNetbootConf(opts.site)] : [""]),
  ].join("\n");
}

/** The addresses of a site lab: one /24 and a ULA prefix, both existing only inside its namespaces. */
export const siteAddressing = {
  prefixLength: 24,
  edgejoin: "10.77.0.1",
  dhcpServer: "10.77.0.2",
  range: ["10.77.0.100", "10.77.0.199"] as [string, string],
  ula: "fd77::",
  edgejoin6: "fd77::1",
  dhcpServer6: "fd77::2",
  httpPort: 8080,
} as const;

/** The site's DHCP server: dnsmasq as the README says, dnsmasq without boot options, none, or ISC dhcpd / Kea with a whole configuration. */
export type SiteDhcp = "netboot" | "plain" | "none" | { server: "isc-dhcpd" | "kea"; conf: string };

/** A site: a LAN namespace (bridge `br0`, taps for machines, edgejoin) and the site's DHCP server in its own namespace. */
export type Site = {
  lan: string;
  dhcpNs: string;
  taps: string[];
  publicUrl: string;
  edgejoin: EdgejoinServer;
  /** The DHCPv4 server (dnsmasq, dhcpd or kea-dhcp4), if any. */
  dhcpServer: LabProcess | undefined;
  /** The same process when the DHCP server is dnsmasq (its `log-dhcp` lines tell who got what). */
  dnsmasq: LabProcess | undefined;
  dhcpConf: string | undefined;
  /** dnsmasq sending only router advertisements next to ISC dhcpd or Kea. */
  routerAdvertiser: LabProcess | undefined;
};

/**
 * Build a site inside `lab`: the LAN namespace with a bridge and `machines` taps, edgejoin
 * serving on the bridge's address, and the site's DHCP server in its own namespace, joined to
 * the bridge by a veth (see `SiteDhcp`; the default is dnsmasq configured as the README says).
 */
export async function openSite(
  lab: NetLab,
  opts: { machines?: number; dhcp?: SiteDhcp; efiBinary?: SiteNetboot["efiBinary"]; edgejoinEnv?: Record<string, string> } = {},
): Promise<Site> {
  const a = siteAddressing;
  const lan = await lab.namespace("lan");
  await lab.bridge(lan, "br0", [`${a.edgejoin}/${a.prefixLength}`, `${a.edgejoin6}/64`]);
  const taps: string[] = [];
  for (let i = 0; i < (opts.machines ?? 1); i++) {
    await lab.tap(lan, `tap${i}`, "br0");
    taps.push(`tap${i}`);
  }
  const publicUrl = `http://${a.edgejoin}:${a.httpPort}`;
  const edgejoin = await lab.edgejoin(lan, { publicUrl, env: { EDGEJOIN_HTTP_PORT: String(a.httpPort), ...opts.edgejoinEnv } });
  lab.timeline.mark("edgejoin serving");

  const dhcp = opts.dhcp ?? "netboot";
  const site: Site = {
    lan,
    dhcpNs: "",
    taps,
    publicUrl,
    edgejoin,
    dhcpServer: undefined,
    dnsmasq: undefined,
    dhcpConf: undefined,
    routerAdvertiser: undefined,
  };
  if (dhcp === "none") return site;
  site.dhcpNs = await lab.namespace("dhcp");
  await lab.veth(
    { ns: lan, name: "dhcp0", bridge: "br0" },
    { ns: site.dhcpNs, name: "eth0", addresses: [`${a.dhcpServer}/${a.prefixLength}`, `${a.dhcpServer6}/64`] },
  );
  if (dhcp === "netboot" || dhcp === "plain") {
    const netboot: SiteNetboot = { edgejoinAddress: a.edgejoin, publicUrl, efiBinary: opts.efiBinary };
    site.dhcpConf = labDnsmasqConf({ iface: "eth0", range: a.range, ula: a.ula, site: dhcp === "netboot" ? netboot : undefined });
    site.dhcpServer = site.dnsmasq = await lab.dnsmasq(site.dhcpNs, site.dhcpConf);
  } else {
    site.routerAdvertiser = await lab.dnsmasq(site.dhcpNs, labDnsmasqConf({ iface: "eth0", ula: a.ula }), "ra-dnsmasq");
    site.dhcpConf = dhcp.conf;
    site.dhcpServer = dhcp.server === "kea" ? await lab.kea(site.dhcpNs, dhcp.conf) : await lab.iscDhcpd(site.dhcpNs, "eth0", dhcp.conf);
  }
  lab.timeline.mark("site DHCP serving");
  return site;
}

// ---------------------------------------------------------------------------------------------
// Reading captures: pcap → UDP datagrams and TCP segments → DHCP messages, TFTP transfers, HTTP exchanges.

/** One captured UDP datagram or TCP segment over IPv4 (other frames are dropped). */
export type Packet = {
  at: number;
  proto: "udp" | "tcp";
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  /** TCP only: sequence number and flags (SYN 0x02, FIN 0x01, RST 0x04). */
  seq?: number;
  flags?: number;
};

const macOf = (b: Buffer, off: number) => [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
const ipOf = (b: Buffer, off: number) => [...b.subarray(off, off + 4)].join(".");

/** Parse a classic pcap file (Ethernet link type) into its UDP/IPv4 packets. */
export function readPcap(path: string): Packet[] {
  const b = readFileSync(path);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${path} is not a pcap file`);
  const nano = (le ? magic : b.readUInt32BE(0)) === 0xa1b23c4d;
  const u32 = (off: number) => (le ? b.readUInt32LE(off) : b.readUInt32BE(off));
  if (u32(20) !== 1) throw new Error(`${path}: link type ${u32(20)} is not Ethernet`);
  const packets: Packet[] = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const at = u32(off) * 1000 + u32(off + 4) / (nano ? 1e6 : 1e3);
    const len = u32(off + 8);
    // tcpdump may be mid-write: a record not yet whole ends the read.
    if (off + 16 + len > b.length) break;
    const frame = b.subarray(off + 16, off + 16 + len);
    off += 16 + len;
    if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (frame[14]! & 0x0f) * 4;
    const ipEnd = 14 + Math.min(frame.readUInt16BE(14 + 2), frame.length - 14);
    const l4 = 14 + ihl;
    const base = { at, dstMac: macOf(frame, 0), srcMac: macOf(frame, 6), src: ipOf(frame, 14 + 12), dst: ipOf(frame, 14 + 16) };
    if (frame[14 + 9] === 17 && frame.length >= l4 + 8) {
      const udpLen = frame.readUInt16BE(l4 + 4);
      packets.push({
        ...base,
        proto: "udp",
        srcPort: frame.readUInt16BE(l4),
        dstPort: frame.readUInt16BE(l4 + 2),
        payload: frame.subarray(l4 + 8, l4 + udpLen),
      });
    } else if (frame[14 + 9] === 6 && frame.length >= l4 + 20) {
      const dataOff = (frame[l4 + 12]! >> 4) * 4;
      packets.push({
        ...base,
        proto: "tcp",
        srcPort: frame.readUInt16BE(l4),
        dstPort: frame.readUInt16BE(l4 + 2),
        seq: frame.readUInt32BE(l4 + 4),
        flags: frame[l4 + 13]!,
        // Ethernet pads short frames: the IP total length says where the segment ends.
        payload: frame.subarray(l4 + dataOff, ipEnd),
      });
    }
  }
  return packets;
}

/** A DHCPv4 message as a lab test needs it. */
export type DhcpMessage = {
  at: number;
  /** 1 DISCOVER, 2 OFFER, 3 REQUEST, 5 ACK, 6 NAK… */
  type: number;
  fromClient: boolean;
  chaddr: string;
  yiaddr: string;
  siaddr: string;
  /** Boot file name from option 67 or else the `file` field, without the trailing NUL dnsmasq adds. */
  bootFile: string | undefined;
  userClass: string | undefined;
  clientArch: number | undefined;
};

/** The DHCP messages in a capture, in order. */
export function dhcpMessages(packets: Packet[]): DhcpMessage[] {
  const out: DhcpMessage[] = [];
  for (const p of packets) {
    if (p.proto !== "udp") continue;
    const fromClient = p.srcPort === 68 && p.dstPort === 67;
    if (!fromClient && !(p.srcPort === 67 && p.dstPort === 68)) continue;
    const d = p.payload;
    if (d.length < 240 || d.readUInt32BE(236) !== 0x63825363) continue;
    const options = new Map<number, Buffer>();
    for (let i = 240; i < d.length; ) {
      const code = d[i]!;
      if (code === 255) break;
      if (code === 0) {
        i += 1;
        continue;
      }
      const len = d[i + 1] ?? 0;
      options.set(code, d.subarray(i + 2, i + 2 + len));
      i += 2 + len;
    }
    const text = (buf: Buffer | undefined) => (buf ? buf.toString("latin1").replace(/\0+$/, "") : undefined);
    const field = d.subarray(108, 236);
    const nul = field.indexOf(0);
    const fileField = field.subarray(0, nul < 0 ? field.length : nul).toString("latin1");
    const arch = options.get(93);
    out.push({
      at: p.at,
      type: options.get(53)?.[0] ?? 0,
      fromClient,
      chaddr: macOf(d, 28),
      yiaddr: ipOf(d, 16),
      siaddr: ipOf(d, 20),
      bootFile: text(options.get(67)) ?? (fileField || undefined),
      userClass: text(options.get(77)),
      clientArch: arch && arch.length >= 2 ? arch.readUInt16BE(0) : undefined,
    });
  }
  return out;
}

/** One TFTP read request and what the server sent for it, reassembled from a capture. */
export type TftpTransfer = {
  startedAt: number;
  endedAt: number;
  clientMac: string;
  client: string;
  clientPort: number;
  server: string;
  serverPort: number | undefined;
  file: string;
  requestOptions: Record<string, string>;
  acceptedOptions: Record<string, string>;
  /** Blocks 1..N in order (a retransmitted block is kept once). */
  data: Buffer;
  /** The last block (shorter than blksize) arrived and no block is missing. */
  complete: boolean;
  /** An ERROR packet, from either side (OVMF aborts its size probe this way). */
  error: { from: "client" | "server"; code: number; message: string } | undefined;
};

function tftpStrings(b: Buffer, from: number): string[] {
  return b.subarray(from).toString("latin1").split("\0").slice(0, -1);
}

/** Every TFTP read request in a capture and the transfer that followed it. */
export function tftpTransfers(packets: Packet[]): TftpTransfer[] {
  const transfers: (TftpTransfer & { blocks: Map<number, Buffer>; lastBlock: number; epoch: number })[] = [];
  const lastWhere = (f: (t: (typeof transfers)[number]) => boolean) => [...transfers].reverse().find(f);
  const byClient = (ip: string, port: number) => lastWhere((t) => t.client === ip && t.clientPort === port);
  for (const p of packets) {
    if (p.proto !== "udp") continue;
    const op = p.payload.length >= 2 ? p.payload.readUInt16BE(0) : 0;
    if (p.dstPort === 69 && op === 1) {
      const [file = "", , ...opts] = tftpStrings(p.payload, 2);
      const requestOptions: Record<string, string> = {};
      for (let i = 0; i + 1 < opts.length; i += 2) requestOptions[opts[i]!.toLowerCase()] = opts[i + 1]!;
      transfers.push({
        startedAt: p.at,
        endedAt: p.at,
        clientMac: p.srcMac,
        client: p.src,
        clientPort: p.srcPort,
        server: p.dst,
        serverPort: undefined,
        file,
        requestOptions,
        acceptedOptions: {},
        data: Buffer.alloc(0),
        complete: false,
        error: undefined,
        blocks: new Map(),
        lastBlock: 0,
        epoch: 0,
      });
      continue;
    }
    // Server → client: from the transfer's ephemeral port (bound on its first answer).
    const toClient = byClient(p.dst, p.dstPort);
    const t = toClient && toClient.server === p.src && (toClient.serverPort ?? p.srcPort) === p.srcPort ? toClient : undefined;
    if (t) {
      t.serverPort = p.srcPort;
      t.endedAt = p.at;
      if (op === 6) {
        const kv = tftpStrings(p.payload, 2);
        for (let i = 0; i + 1 < kv.length; i += 2) t.acceptedOptions[kv[i]!.toLowerCase()] = kv[i + 1]!;
      } else if (op === 3) {
        const raw = p.payload.readUInt16BE(2);
        // Block numbers wrap at 65536 on files over 64k blocks.
        if (raw < 0x4000 && (t.lastBlock & 0xffff) > 0xc000) t.epoch += 1;
        const block = t.epoch * 65536 + raw;
        t.lastBlock = Math.max(t.lastBlock, block);
        if (!t.blocks.has(block)) t.blocks.set(block, p.payload.subarray(4));
      } else if (op === 5) {
        t.error = { from: "server", code: p.payload.readUInt16BE(2), message: tftpStrings(p.payload, 4)[0] ?? "" };
      }
      continue;
    }
    const fromClient = lastWhere((x) => x.client === p.src && x.clientPort === p.srcPort && x.serverPort === p.dstPort);
    if (fromClient) {
      fromClient.endedAt = p.at;
      if (op === 5) fromClient.error = { from: "client", code: p.payload.readUInt16BE(2), message: tftpStrings(p.payload, 4)[0] ?? "" };
    }
  }
  return transfers.map(({ blocks, lastBlock, epoch: _epoch, ...t }) => {
    const blksize = Number(t.acceptedOptions.blksize ?? 512);
    const ordered: Buffer[] = [];
    let complete = lastBlock > 0;
    for (let i = 1; i <= lastBlock; i++) {
      const b = blocks.get(i);
      if (!b) {
        complete = false;
        break;
      }
      ordered.push(b);
    }
    const last = blocks.get(lastBlock);
    complete = complete && last !== undefined && last.length < blksize;
    return { ...t, data: Buffer.concat(ordered), complete };
  });
}

/** One HTTP request and its response, read back from a capture's TCP streams. */
export type HttpExchange = {
  at: number;
  clientMac: string;
  client: string;
  server: string;
  serverPort: number;
  method: string;
  target: string;
  status: number | undefined;
  headers: Record<string, string>;
  body: Buffer;
};

/** One direction of a TCP connection, in sequence order from just after the SYN, up to the first gap. */
function tcpStream(segments: Packet[]): Buffer {
  const syn = segments.find((s) => (s.flags! & 0x02) !== 0);
  const base = syn ? syn.seq! + 1 : Math.min(...segments.map((s) => s.seq!));
  const parts = segments
    .filter((s) => s.payload.length > 0)
    .map((s) => ({ off: (s.seq! - base) >>> 0, data: s.payload }))
    .sort((a, b) => a.off - b.off);
  const out: Buffer[] = [];
  let cursor = 0;
  for (const { off, data } of parts) {
    if (off > cursor) break;
    if (off + data.length <= cursor) continue; // a retransmission of bytes we have
    out.push(data.subarray(cursor - off));
    cursor = off + data.length;
  }
  return Buffer.concat(out);
}

/**
 * Split an HTTP/1.1 byte stream into messages (bodies by Content-Length or chunked). `bodiless(i)`
 * says message i has no body whatever its headers say: the answer to a HEAD (UEFI HTTP boot sends
 * HEAD then GET on one connection).
 */
function httpMessages(stream: Buffer, bodiless: (i: number) => boolean = () => false): { head: string; headers: Record<string, string>; body: Buffer }[] {
  const out: { head: string; headers: Record<string, string>; body: Buffer }[] = [];
  let at = 0;
  while (at < stream.length) {
    const end = stream.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const [head = "", ...lines] = stream.subarray(at, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    at = end + 4;
    let body: Buffer;
    if (bodiless(out.length)) body = Buffer.alloc(0);
    else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const chunks: Buffer[] = [];
      for (;;) {
        const lineEnd = stream.indexOf("\r\n", at);
        if (lineEnd < 0) break;
        const size = Number.parseInt(stream.subarray(at, lineEnd).toString("latin1"), 16);
        at = lineEnd + 2;
        if (!(size > 0)) {
          at = Math.min(stream.length, at + 2);
          break;
        }
        chunks.push(stream.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(chunks);
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      body = stream.subarray(at, at + n);
      at += n;
    } else {
      // A request without a length has no body; a response without one runs to the close.
      body = head.startsWith("HTTP/") ? stream.subarray(at) : Buffer.alloc(0);
      if (head.startsWith("HTTP/")) at = stream.length;
    }
    out.push({ head, headers, body });
  }
  return out;
}

/** The HTTP exchanges in a capture whose server listens on `serverPort`, in request order. */
export function httpExchanges(packets: Packet[], serverPort: number): HttpExchange[] {
  const connections = new Map<string, { up: Packet[]; down: Packet[] }>();
  for (const p of packets) {
    if (p.proto !== "tcp") continue;
    const up = p.dstPort === serverPort;
    if (!up && p.srcPort !== serverPort) continue;
    const key = up ? `${p.src}:${p.srcPort}>${p.dst}` : `${p.dst}:${p.dstPort}>${p.src}`;
    const c = connections.get(key) ?? { up: [], down: [] };
    (up ? c.up : c.down).push(p);
    connections.set(key, c);
  }
  const out: HttpExchange[] = [];
  for (const { up, down } of connections.values()) {
    const first = up[0];
    if (!first) continue;
    const requests = httpMessages(tcpStream(up));
    const responses = httpMessages(down.length > 0 ? tcpStream(down) : Buffer.alloc(0), (i) => requests[i]?.head.startsWith("HEAD ") ?? false);
    // Time each request by the segment that carried its first bytes.
    const starts = up.filter((p) => /^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(p.payload.toString("latin1", 0, Math.min(p.payload.length, 2048))));
    requests.forEach((req, i) => {
      const [method = "", target = ""] = req.head.split(" ");
      const res = responses[i];
      out.push({
        at: starts[i]?.at ?? first.at,
        clientMac: first.srcMac,
        client: first.src,
        server: first.dst,
        serverPort,
        method,
        target,
        status: res ? Number(res.head.split(" ")[1]) : undefined,
        headers: res?.headers ?? {},
        body: res?.body ?? Buffer.alloc(0),
      });
    });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Hex SHA-256, for comparing what was served with the file on disk. */
export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
