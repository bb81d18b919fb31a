/**
 * The real edgejoin process, for tests of start, restart and crash: on free loopback ports with
 * its own data folder, its output kept, stopped by its PID. A process a test started is killed
 * when that test ends, pass or fail.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";
import { freeTcpPort, freeUdpPort } from "./ports.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** `main` runs server/main.ts through tsx; `cli` runs `bin/edgejoin.js serve`, the installed command. */
const entries = {
  main: ["--import", "tsx", "server/main.ts"],
  cli: ["bin/edgejoin.js", "serve"],
} as const;

/** Which way to start the server. */
export type ServerEntry = keyof typeof entries;

/** One run of the process: what it wrote so far and how it ended. */
export type ServerRun = {
  readonly child: ChildProcess;
  /** Its HTTP base on loopback, from EDGEJOIN_HTTP_HOST and EDGEJOIN_HTTP_PORT. */
  readonly url: string;
  /** Its node API base, `https://` on EDGEJOIN_HTTPS_PORT (the public URL's host, as agents get it). */
  readonly nodeUrl: string;
  /** Where the server keeps its CA certificate (made at first start): what an agent pins. */
  readonly caFile: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when a signal ended it) once its output is all read. */
  readonly exited: Promise<number | null>;
};

/** Settings for a start on free loopback ports (HTTP and HTTPS over TCP, TFTP over UDP), data in `root`/data, an empty `root`/boot. */
export async function loopbackSettings(root: string): Promise<Record<string, string>> {
  const httpPort = await freeTcpPort();
  let httpsPort = await freeTcpPort();
  for (let i = 0; i < 10 && httpsPort === httpPort; i++) httpsPort = await freeTcpPort();
  const boot = join(root, "boot");
  mkdirSync(boot, { recursive: true });
  return {
    EDGEJOIN_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    EDGEJOIN_HTTP_HOST: "127.0.0.1",
    EDGEJOIN_HTTP_PORT: String(httpPort),
    EDGEJOIN_HTTPS_HOST: "127.0.0.1",
    EDGEJOIN_HTTPS_PORT: String(httpsPort),
    EDGEJOIN_TFTP_HOST: "127.0.0.1",
    EDGEJOIN_TFTP_PORT: String(await freeUdpPort()),
    // Not created here: the server makes its own data folder.
    EDGEJOIN_DATA_DIR: join(root, "data"),
    EDGEJOIN_BOOT_DIR: boot,
  };
}

/** Spawn edgejoin with PATH, HOME and only `settings` (none of the runner's EDGEJOIN_*); call it inside a test. */
export function spawnServer(settings: Record<string, string>, entry: ServerEntry = "main"): ServerRun {
  const child = spawn(process.execPath, [...entries[entry]], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...settings },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  const run: ServerRun = {
    child,
    url: `http://${settings.EDGEJOIN_HTTP_HOST ?? "127.0.0.1"}:${settings.EDGEJOIN_HTTP_PORT}`,
    nodeUrl: nodeUrlOf(settings),
    caFile: join(settings.EDGEJOIN_DATA_DIR ?? join(repoRoot, "data"), "tls", "ca.crt"),
    stdout: () => out,
    stderr: () => err,
    exited,
  };
  onTestFinished(async () => {
    await stopServer(run, "SIGKILL");
  });
  return run;
}

/** The node API's base as the server derives it: the public URL's host on the HTTPS port (8443 unset). */
export function nodeUrlOf(settings: Record<string, string>): string {
  const url = new URL(settings.EDGEJOIN_PUBLIC_URL ?? `http://${settings.EDGEJOIN_HTTP_HOST ?? "127.0.0.1"}`);
  url.protocol = "https:";
  url.port = settings.EDGEJOIN_HTTPS_PORT ?? "8443";
  return url.origin;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** How a start went: from spawn until its HTTP port took a connection, and until /healthz answered. */
export type StartTiming = { listeningMs: number; healthyMs: number; probes: number; timedOutProbes: number };

/** Whether something accepts TCP connections on `url`'s host and port (the kernel answers once the server called listen). */
function accepts(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(false));
  });
}

/**
 * Wait (at most `ms`) until GET /healthz answers; fails with the end of its output if it exits first
 * or never answers. Once the port accepts, a probe waits for its answer (up to what is left of
 * `ms`) instead of giving up after a second: a server that clients are already flooding answers
 * in the order the requests came, and a probe abandoned and sent again only goes to the back.
 */
export async function waitHealthy(run: ServerRun, ms = 20_000): Promise<StartTiming> {
  const started = Date.now();
  const deadline = started + ms;
  let listeningMs: number | undefined;
  let probes = 0;
  let timedOutProbes = 0;
  while (Date.now() < deadline) {
    if (!running(run.child)) throw new Error(`edgejoin exited with ${run.child.exitCode ?? run.child.signalCode} at start:\n${outputTail(run)}`);
    if (listeningMs === undefined && (await accepts(new URL(run.url)))) listeningMs = Date.now() - started;
    if (listeningMs !== undefined) {
      probes++;
      try {
        const res = await fetch(`${run.url}/healthz`, { signal: AbortSignal.timeout(Math.max(1_000, deadline - Date.now())) });
        if (res.ok) return { listeningMs, healthyMs: Date.now() - started, probes, timedOutProbes };
      } catch (err) {
        if ((err as Error).name === "TimeoutError") timedOutProbes++;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `edgejoin did not answer /healthz within ${ms / 1000} s (${listeningMs === undefined ? "its port never took a connection" : `listening after ${listeningMs} ms, ${probes} probes`}):\n${outputTail(run)}`,
  );
}

/**
 * Wait (at most `ms`) until both its HTTP and HTTPS ports take connections, which main does only
 * once settings, database, keys and TLS are loaded; the time it took. For a restart into clients
 * that are already retrying: whether it then serves them is what they see, not a probe queued
 * behind them.
 */
export async function waitListening(run: ServerRun, ms = 20_000): Promise<number> {
  const started = Date.now();
  const ports = [new URL(run.url), new URL(run.nodeUrl)];
  while (Date.now() < started + ms) {
    if (!running(run.child)) throw new Error(`edgejoin exited with ${run.child.exitCode ?? run.child.signalCode} at start:\n${outputTail(run)}`);
    if ((await Promise.all(ports.map(accepts))).every(Boolean)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`edgejoin did not take connections on HTTP and HTTPS within ${ms / 1000} s:\n${outputTail(run)}`);
}

const outputTail = (run: ServerRun) => `${run.stderr()}${run.stdout()}`.slice(-3000);

/** Send `signal` to the process by its PID, SIGKILL after `graceMs`; resolves with its exit code once it is gone. */
export async function stopServer(run: ServerRun, signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<number | null> {
  if (running(run.child)) {
    run.child.kill(signal);
    const timer = setTimeout(() => run.child.kill("SIGKILL"), graceMs);
    await run.exited;
    clearTimeout(timer);
  }
  return run.exited;
}
