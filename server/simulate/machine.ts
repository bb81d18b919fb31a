/**
 * One virtual machine's whole life over the real protocols, as firmware, iPXE, cloud-init and the
 * agent would walk it: TFTP boot file, `/boot.ipxe` bare then identified, the four NoCloud seed
 * files, enroll with the token from user-data, config polls honouring `retry_after`, then
 * `k3s-started` and `ready`. The node API's URL and CA come from the user-data it fetched.
 */
import { parse } from "yaml";
import { exchange, type HttpAnswer, type HttpOptions } from "./http.js";
import { TftpError, tftpGet } from "./tftp-client.js";

/** Steps timed per machine, in the order a machine walks them. */
export const steps = [
  "tftp",
  "boot-bare",
  "boot",
  "meta-data",
  "user-data",
  "vendor-data",
  "network-config",
  "enroll",
  "approve",
  "config-poll",
  "config-wait",
  "k3s-started",
  "ready",
] as const;
/** One timed step. */
export type Step = (typeof steps)[number];

/** Who a machine is and which cluster it is meant for. */
export type Identity = {
  index: number;
  mac: string;
  serial: string;
  uuid: string;
  clusterId: number;
  clusterName: string;
  /** The address it speaks from (its own loopback address when the server is on loopback), as a real site's machines each have one. */
  sourceIp?: string | undefined;
};

/** What one machine saw; the run's checks and tables are made from these. */
export type MachineTrace = Identity & {
  nodeId?: number;
  role?: string;
  configYaml?: string;
  joined: boolean;
  failure?: string;
  polls: number;
  waitReasons: Set<string>;
};

/** What the whole run shares: where the server is, how to wait, and where timings go. */
export type MachineContext = {
  url: string;
  tftp: { host: string; port: number; file: string } | undefined;
  adminToken: string;
  /** `admin`: this machine is approved through the admin API once enrolled; `rule`: a rule approves it. */
  approval: "admin" | "rule";
  /** Milliseconds to wait for a `retry_after` of `seconds`. */
  waitMs: (seconds: number) => number;
  /** How long the made-up k3s takes from started to ready, by role. */
  k3sMs: (role: string) => number;
  caHash: (clusterName: string) => string;
  deadline: number;
  record: (step: Step, ms: number) => void;
  /** A network error or 5xx that was retried, by step. */
  retried: (step: Step, why: string) => void;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The files cloud-init would write under the agent's state folder, by name, from a user-data. */
export function agentFiles(userData: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (v: unknown) => {
    if (v === null || typeof v !== "object") return;
    const rec = v as Record<string, unknown>;
    if (typeof rec.path === "string" && rec.path.startsWith("/var/lib/edgejoin-agent/") && typeof rec.content === "string") {
      files.set(rec.path.slice("/var/lib/edgejoin-agent/".length), rec.content.trim());
    }
    for (const child of Object.values(rec)) walk(child);
  };
  // An autoinstall user-data nests the installed system's user-data; the walk finds both.
  walk(parse(userData));
  return files;
}

/** What the agent needs from its state files: the node API base, the CA to trust for it, the one-time token. */
export function agentSettings(files: Map<string, string>): { nodeUrl: string; ca: string | undefined; token: string } {
  const token = files.get("bootstrap-token");
  const nodeUrl = files.get("node-url") ?? files.get("server-url");
  if (!token || !nodeUrl) throw new Error(`user-data lacks ${token ? "the server URL" : "the bootstrap token"}`);
  // Whatever file carries a certificate is the CA edgejoin wants its node API trusted with.
  const ca = [...files.values()].find((c) => c.includes("-----BEGIN CERTIFICATE-----"));
  return { nodeUrl: nodeUrl.replace(/\/+$/, ""), ca, token };
}

/** Walk one machine through its life; the trace says how far it got. Never throws. */
export async function runMachine(ctx: MachineContext, id: Identity): Promise<MachineTrace> {
  const t: MachineTrace = { ...id, joined: false, polls: 0, waitReasons: new Set() };
  try {
    await life(ctx, t);
  } catch (err) {
    t.failure = (err as Error).message;
  }
  return t;
}

/** One timed exchange; network errors and 5xx are retried (as the agent's systemd restart would) until the deadline. */
async function call(ctx: MachineContext, id: Identity, step: Step, method: string, url: string, o: HttpOptions = {}): Promise<HttpAnswer> {
  for (let attempt = 0; ; attempt++) {
    if (Date.now() > ctx.deadline) throw new Error(`deadline passed at ${step}`);
    const started = performance.now();
    try {
      const res = await exchange(method, url, { ...o, localAddress: id.sourceIp });
      if (res.status < 500) {
        ctx.record(step, performance.now() - started);
        return res;
      }
      ctx.retried(step, `HTTP ${res.status}`);
    } catch (err) {
      ctx.retried(step, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
    await sleep(Math.min(5_000, 100 * 2 ** attempt) * (0.5 + Math.random()));
  }
}

function expectStatus(step: Step, res: HttpAnswer, status: number): HttpAnswer {
  if (res.status !== status) throw new Error(`${step}: HTTP ${res.status} ${res.text.slice(0, 160)}`);
  return res;
}

/** What iPXE would substitute into the chain script's identified URL. */
function identifiedUrl(chain: string, id: Identity): string {
  const m = /imgfetch --name identified (\S+)/.exec(chain);
  if (!m) throw new Error("boot-bare: the chain script names no identified URL");
  const vars: Record<string, string> = {
    "net0/mac": id.mac,
    uuid: id.uuid,
    "serial:uristring": encodeURIComponent(id.serial),
    buildarch: "x86_64",
    platform: "efi",
    "manufacturer:uristring": "edgejoin-sim",
    "product:uristring": "virtual",
  };
  return m[1]!.replace(/\$\{([^}]+)\}/g, (_, name: string) => vars[name] ?? "");
}

/**
 * The firmware's TFTP fetch of the boot file. A busy answer (ERROR 0) is retried with
 * backoff, as PXE firmware retries; a server without iPXE binaries still serves autoexec.ipxe.
 */
async function fetchBootFile(ctx: MachineContext, t: MachineTrace, tftp: NonNullable<MachineContext["tftp"]>): Promise<void> {
  let file = tftp.file;
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    try {
      await tftpGet(tftp.host, tftp.port, file, { blksize: 1468, localAddress: t.sourceIp, backoff: true });
      ctx.record("tftp", performance.now() - started);
      return;
    } catch (err) {
      if (err instanceof TftpError && err.code === 1 && file !== "autoexec.ipxe") {
        file = "autoexec.ipxe";
        continue;
      }
      // Silence after the client's own resends is a dead server, as firmware gives up on it.
      if (!(err instanceof TftpError && err.code === 0) || Date.now() > ctx.deadline) throw new Error(`tftp: ${(err as Error).message}`);
      ctx.retried("tftp", (err as Error).message);
    }
    await sleep(Math.min(5_000, 200 * 2 ** attempt) * (0.5 + Math.random()));
  }
}

async function life(ctx: MachineContext, t: MachineTrace): Promise<void> {
  if (ctx.tftp) await fetchBootFile(ctx, t, ctx.tftp);
  const chain = expectStatus("boot-bare", await call(ctx, t, "boot-bare", "GET", `${ctx.url}/boot.ipxe`), 200).text;
  const script = expectStatus("boot", await call(ctx, t, "boot", "GET", identifiedUrl(chain, t)), 200).text;
  const seed = /ds=nocloud-net;s=(\S+)/.exec(script)?.[1];
  if (!seed) throw new Error(`boot: no NoCloud seed in the script (${script.split("\n")[1] ?? ""})`);
  expectStatus("meta-data", await call(ctx, t, "meta-data", "GET", `${seed}meta-data`), 200);
  const userData = expectStatus("user-data", await call(ctx, t, "user-data", "GET", `${seed}user-data`), 200).text;
  expectStatus("vendor-data", await call(ctx, t, "vendor-data", "GET", `${seed}vendor-data`), 200);
  expectStatus("network-config", await call(ctx, t, "network-config", "GET", `${seed}network-config`), 200);

  const agent = agentSettings(agentFiles(userData));
  const enrolled = expectStatus(
    "enroll",
    await call(ctx, t, "enroll", "POST", `${agent.nodeUrl}/api/v1/enroll`, {
      ca: agent.ca,
      json: { token: agent.token, mac: t.mac, uuid: t.uuid, serial: t.serial, arch: "x86_64", facts: { cpu_count: 4 } },
    }),
    201,
  );
  const { node_id, credential } = JSON.parse(enrolled.text) as { node_id: number; credential: string };
  t.nodeId = node_id;
  if (ctx.approval === "admin") {
    const res = await call(ctx, t, "approve", "POST", `${ctx.url}/api/v1/nodes/${node_id}/approve`, {
      headers: { authorization: `Bearer ${ctx.adminToken}` },
      json: { cluster_id: t.clusterId },
    });
    expectStatus("approve", res, 200);
  }

  const node = { ca: agent.ca, headers: { authorization: `Bearer ${credential}` } };
  const waitStarted = performance.now();
  for (;;) {
    t.polls++;
    const res = await call(ctx, t, "config-poll", "GET", `${agent.nodeUrl}/api/v1/node/config`, node);
    if (res.status === 200) {
      const body = JSON.parse(res.text) as { role: string; config_yaml: string };
      t.role = body.role;
      t.configYaml = body.config_yaml;
      break;
    }
    if (res.status !== 202) throw new Error(`config-poll: HTTP ${res.status} ${res.text.slice(0, 160)}`);
    const wait = JSON.parse(res.text) as { reason: string; retry_after: number };
    t.waitReasons.add(wait.reason);
    // The agent honours retry_after; a little jitter keeps a crowd from asking in lockstep.
    await sleep(ctx.waitMs(wait.retry_after) * (0.75 + Math.random() * 0.5));
  }
  ctx.record("config-wait", performance.now() - waitStarted);

  const event = async (step: "k3s-started" | "ready", json: Record<string, string>) => {
    expectStatus(step, await call(ctx, t, step, "POST", `${agent.nodeUrl}/api/v1/node/events`, { ...node, json }), 202);
  };
  await event("k3s-started", { type: "k3s-started" });
  await sleep(ctx.k3sMs(t.role!));
  await event("ready", t.role === "agent" ? { type: "ready" } : { type: "ready", ca_hash: ctx.caHash(t.clusterName) });
  t.joined = true;
}
