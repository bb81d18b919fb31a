/**
 * What the bench runs and loads, shared by `npm run bench` (run.ts) and the profiler (profile.ts):
 * one temp folder, every process started in it (stopped by PID through `stopAll`), edgejoin on
 * loopback with its own data folder, wrk with MACs rotating, nginx and the bare Hono baselines.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb } from "../../db/client.js";
import { extraLoopbackSettings, freeTcpPort, freeUdpPort } from "../../server/simulate/ports.js";
import { placeInstallerStandIns } from "../../server/simulate/stand-ins.js";
import { benchMac, benchMacCount } from "./macs.js";
import { cpuMs, cpus, type Proc, run, start, waitHttp } from "./procs.js";
import { seedMachines } from "./seed.js";

export const dir = mkdtempSync(join(tmpdir(), "edgejoin-bench-"));
// nginx workers and tftpd-hpa, started as root, drop to nobody: they must be able to read in here.
chmodSync(dir, 0o755);
export const adminToken = "bench-admin-token-0123456789abcdef";
export const procs: Proc[] = [];
export const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

/** A fresh edgejoin on loopback with its own data folder; boot folder holding `bootFile` when given. */
export async function startEdgejoin(name: string, o: { bootFile?: string; seed?: number } = {}) {
  const { bootFile } = o;
  const http = await freeTcpPort();
  const tftp = await freeUdpPort();
  const root = join(dir, name);
  mkdirSync(join(root, "boot"), { recursive: true });
  if (bootFile) copyFileSync(bootFile, join(root, "boot", "boot.bin"));
  placeInstallerStandIns(join(root, "artifacts"));
  const url = `http://127.0.0.1:${http}`;
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    EDGEJOIN_PUBLIC_URL: url,
    EDGEJOIN_HTTP_HOST: "127.0.0.1",
    EDGEJOIN_HTTP_PORT: String(http),
    EDGEJOIN_TFTP_HOST: "127.0.0.1",
    EDGEJOIN_TFTP_PORT: String(tftp),
    EDGEJOIN_DATA_DIR: join(root, "data"),
    EDGEJOIN_BOOT_DIR: join(root, "boot"),
    EDGEJOIN_ARTIFACTS_DIR: join(root, "artifacts"),
    EDGEJOIN_ADMIN_TOKEN: adminToken,
    EDGEJOIN_LOG_LEVEL: "warn",
    ...(await extraLoopbackSettings()),
  };
  // Node refuses --cpu-prof in NODE_OPTIONS: it goes on the command line.
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const launch = async () => {
    const p = start(process.execPath, [...profile, "--import", "tsx", "server/main.ts"], { cpu: cpus.server, log: join(dir, `${name}.log`), env });
    procs.push(p);
    await waitHttp(`${url}/healthz`, 30_000, p);
    return p;
  };
  let proc = await launch();
  if (o.seed) {
    // The first start made the database and the default cluster; the inventory goes in while it is down.
    await proc.stop();
    const db = openDb(join(root, "data", "edgejoin.db"));
    // Named, as after each machine's meta-data fetch: user-data is measured as machines fetch it, second.
    seedMachines(db, o.seed, benchMac, undefined, { named: true });
    db.$client.close();
    proc = await launch();
  }
  return { url, tftpPort: tftp, proc };
}

/** The two measured paths, `{mac}` where each request puts its machine's MAC. */
export const bootPath = "/boot.ipxe?mac={mac}";
export const userDataPath = "/cloud-init/{mac}/user-data";

/** One wrk run: 1 thread, 64 connections, `secs` seconds, MACs rotating through `path` (MAC where `{mac}` is). */
export async function wrk(base: string, path: string, secs: number, serverPid?: number) {
  const [prefix, suffix] = path.split("{mac}");
  const script = join(dir, `wrk-${Buffer.from(path).toString("hex").slice(0, 24)}.lua`);
  writeFileSync(
    script,
    `local i = 0
request = function()
  i = i + 1
  local n = i % ${benchMacCount}
  local mac = string.format("02:be:00:%02x:%02x:%02x", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", "${prefix}" .. mac .. "${suffix ?? ""}")
end
`,
  );
  const cpuBefore = serverPid ? cpuMs(serverPid) : 0;
  const out = await run("wrk", ["-t1", "-c64", `-d${secs}s`, "--timeout", "10s", "--latency", "-s", script, base], {
    cpu: cpus.client,
    ms: (secs + 30) * 1000,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p99 = latencyMs(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out));
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(out)?.[1];
  // The server's own CPU per answer: steadier than req/s when other work shares the machine.
  const cpu_us_per_req = serverPid && rps > 0 ? ((cpuMs(serverPid) - cpuBefore) * 1000) / (rps * secs) : Number.NaN;
  return { rps, p99_ms: p99, non2xx, errors: errors ?? null, cpu_us_per_req };
}

export function latencyMs(m: RegExpExecArray | null): number {
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

export const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};

export async function nginx(www: string) {
  const port = await freeTcpPort();
  const root = join(dir, "nginx");
  mkdirSync(join(root, "logs"), { recursive: true });
  writeFileSync(
    join(root, "nginx.conf"),
    `worker_processes 1;
daemon off;
pid ${root}/nginx.pid;
error_log ${root}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path ${root}/tmp;
  server {
    listen 127.0.0.1:${port};
    root ${www};
    location = /boot.ipxe { try_files /boot.ipxe =404; }
    location ~ ^/cloud-init/[^/]+/user-data$ { try_files /user-data =404; }
  }
}
`,
  );
  const proc = start("nginx", ["-p", root, "-e", join(root, "logs", "error.log"), "-c", join(root, "nginx.conf")], {
    cpu: cpus.server,
    log: join(dir, "nginx.log"),
  });
  procs.push(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/boot.ipxe`, 10_000, proc);
  return { url, pid: proc.child.pid! };
}

export async function baseline(file: string) {
  const port = await freeTcpPort();
  const proc = start(process.execPath, ["--import", "tsx", join("test/bench", file), String(port)], { cpu: cpus.server, log: join(dir, `${file}.log`) });
  procs.push(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(url, 30_000, proc);
  return { url, pid: proc.child.pid! };
}

/** Stop every process this run started (by PID), newest first. */
export async function stopAll(): Promise<void> {
  for (const p of procs.splice(0).reverse()) await p.stop();
}

/** Stop everything and remove the temp folder. */
export async function cleanUp(): Promise<void> {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
