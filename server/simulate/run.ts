/**
 * `edgejoin simulate`: N virtual machines with distinct MAC, serial and UUID walk their whole
 * life against a running edgejoin, approved by a rule the run creates (or through the admin API),
 * then the run checks the quorum rules held and prints what it took.
 */
import { createHash, randomBytes } from "node:crypto";
import { parse } from "yaml";
import { exchange } from "./http.js";
import { runMachine, type Identity, type MachineContext, type MachineTrace, type Step } from "./machine.js";
import { progress, renderTables, stepFigures, type ClusterFigures, type StepFigures } from "./report.js";

/** What the command line passes in. */
export type SimulateOptions = {
  nodes: number;
  url: string;
  adminToken: string;
  /** host:port of the TFTP server; none skips the TFTP step. */
  tftp?: string | undefined;
  /** Cluster names; machines are spread over them in turn. Missing ones are created. None: the default cluster. */
  clusters: string[];
  /** Desired servers of clusters the run creates. */
  servers: number;
  /** Machines walking at the same time. */
  concurrency: number;
  /** Shorten every wait (retry_after, the made-up k3s start) for simulation. */
  fast: boolean;
  /** Approve through the admin API instead of with a rule. */
  approve: boolean;
  bootFile: string;
  timeoutMs: number;
  /** Where progress goes; tables go to `out`. */
  err?: NodeJS.WriteStream;
  out?: NodeJS.WritableStream;
};

/** What a run found: the tables' figures, the traces, and whether it passed. */
export type SimulateResult = {
  ok: boolean;
  wallMs: number;
  approval: "admin" | "rule";
  clusters: ClusterFigures[];
  steps: StepFigures[];
  traces: MachineTrace[];
  notes: string[];
};

type ClusterInfo = { id: number; name: string; servers: number; is_default: boolean; installer: unknown };

/** A MAC in the locally administered range, unique per run (16 random bits) and machine (24 bits). */
function macOf(run: Buffer, i: number): string {
  const b = [0x02, run[0]!, run[1]!, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/**
 * A loopback address of its own for machine `i` (127.10.0.1 onwards) when the server is on
 * loopback: edgejoin limits new machines per source address, as it should for a real site.
 */
function loopbackSource(url: string, i: number): string | undefined {
  const host = new URL(url).hostname;
  if (host !== "127.0.0.1" && host !== "localhost") return undefined;
  return `127.${10 + Math.floor(i / 65_024)}.${Math.floor(i / 254) % 256}.${(i % 254) + 1}`;
}

function uuidOf(runHex: string, i: number): string {
  const h = createHash("sha256").update(`${runHex}:${i}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The serial prefix every machine of this run and cluster carries: what the run's approval rule matches. */
function serialPrefix(runHex: string, clusterIndex: number): string {
  return `SIM${runHex}C${clusterIndex}-`;
}

async function admin(o: SimulateOptions, method: string, path: string, json?: unknown) {
  const res = await exchange(method, `${o.url}${path}`, { headers: { authorization: `Bearer ${o.adminToken}` }, json, timeoutMs: 60_000 });
  return { status: res.status, body: (res.text ? JSON.parse(res.text) : {}) as Record<string, unknown> };
}

async function mustAdmin(o: SimulateOptions, method: string, path: string, json?: unknown) {
  const res = await admin(o, method, path, json);
  if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${String(res.body.error)}: ${String(res.body.message)}`);
  return res.body;
}

/** The clusters machines go to, created (with `servers` desired) when missing. */
async function prepareClusters(o: SimulateOptions): Promise<ClusterInfo[]> {
  const list = (await mustAdmin(o, "GET", "/api/v1/clusters")).clusters as ClusterInfo[];
  if (o.clusters.length === 0) {
    const d = list.find((c) => c.is_default);
    if (!d) throw new Error("the server has no default cluster: name one with --cluster");
    return [d];
  }
  const template = list.find((c) => c.is_default) ?? list[0];
  const chosen: ClusterInfo[] = [];
  for (const name of o.clusters) {
    const found = list.find((c) => c.name === name);
    if (found) chosen.push(found);
    else
      chosen.push(
        (await mustAdmin(o, "POST", "/api/v1/clusters", { name, servers: o.servers, ...(template ? { installer: template.installer } : {}) })) as ClusterInfo,
      );
  }
  return chosen;
}

/** Create one approval rule per cluster matching this run's serials; false when the server has no rules API. */
async function createRules(o: SimulateOptions, runHex: string, clusters: ClusterInfo[], perCluster: number[]): Promise<boolean> {
  const probe = await admin(o, "GET", "/api/v1/rules");
  if (probe.status === 404 || probe.status === 405) return false;
  for (const [i, c] of clusters.entries()) {
    await mustAdmin(o, "POST", "/api/v1/rules", {
      name: `simulate-${runHex.toLowerCase()}-${i}`,
      cluster_id: c.id,
      match: { serial_prefix: serialPrefix(runHex, i) },
      // Exactly this run's machines: one more approval than that would be a broken limit.
      limit: perCluster[i],
    });
  }
  return true;
}

/** The server secret of a cluster as its init or a joining server saw it (the part after `::server:`). */
function serverSecretOf(trace: MachineTrace): string | undefined {
  const token = (parse(trace.configYaml ?? "", { version: "1.1" }) as Record<string, unknown> | null)?.token;
  if (typeof token !== "string") return undefined;
  return trace.role === "init" ? token : token.split("::server:")[1];
}

/** Rule checks over what the machines saw and what the server's quorum report says. */
async function checkCluster(o: SimulateOptions, c: ClusterInfo, traces: MachineTrace[]): Promise<ClusterFigures> {
  const problems: string[] = [];
  const mine = traces.filter((t) => t.clusterId === c.id);
  const inits = mine.filter((t) => t.role === "init");
  const servers = mine.filter((t) => t.role === "init" || t.role === "server");
  if (inits.length > 1) problems.push(`${inits.length} machines were given cluster-init`);
  if (servers.length > c.servers) problems.push(`${servers.length} servers, ${c.servers} desired`);
  const secrets = new Set(servers.map(serverSecretOf).filter((s): s is string => Boolean(s)));
  for (const a of mine.filter((t) => t.role === "agent")) {
    if ([...secrets].some((s) => a.configYaml?.includes(s))) problems.push(`agent ${a.mac} holds the server token`);
  }
  const quorum = await mustAdmin(o, "GET", `/api/v1/clusters/${c.id}/quorum`);
  const listed = (quorum.servers ?? []) as { role: string; state: string }[];
  if (listed.filter((s) => s.role === "init").length > 1) problems.push("the quorum report lists two init servers");
  if (listed.length > c.servers) problems.push(`the quorum report lists ${listed.length} servers, ${c.servers} desired`);
  if (quorum.health === "split_brain_risk") problems.push("the quorum report says split_brain_risk");
  return {
    cluster: c.name,
    desired: c.servers,
    serversReady: listed.filter((s) => s.state === "joined").length,
    agents: mine.filter((t) => t.role === "agent" && t.joined).length,
    machines: mine.length,
    joined: mine.filter((t) => t.joined).length,
    failures: mine.filter((t) => !t.joined).length,
    problems,
  };
}

/** Run the whole simulation; resolves with the figures (it does not exit the process). */
export async function simulate(o: SimulateOptions): Promise<SimulateResult> {
  const err = o.err ?? process.stderr;
  const notes: string[] = [];
  const run = randomBytes(2);
  const runHex = run.toString("hex").toUpperCase();
  const clusters = await prepareClusters(o);
  const ids: Identity[] = Array.from({ length: o.nodes }, (_, i) => {
    const ci = i % clusters.length;
    return {
      index: i,
      mac: macOf(run, i + 1),
      serial: `${serialPrefix(runHex, ci)}${i + 1}`,
      uuid: uuidOf(runHex, i),
      clusterId: clusters[ci]!.id,
      clusterName: clusters[ci]!.name,
      sourceIp: loopbackSource(o.url, i),
    };
  });
  let approval: "admin" | "rule" = "admin";
  if (!o.approve) {
    const perCluster = clusters.map((_, ci) => ids.filter((m) => m.index % clusters.length === ci).length);
    if (await createRules(o, runHex, clusters, perCluster)) approval = "rule";
    else notes.push("the server has no /api/v1/rules: approved through the admin API instead");
  }
  let tftp: MachineContext["tftp"];
  if (o.tftp) {
    const at = o.tftp.lastIndexOf(":");
    tftp = { host: o.tftp.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(o.tftp.slice(at + 1)), file: o.bootFile };
  }
  const timings = new Map<Step, number[]>();
  const retried = new Map<Step, number>();
  const caHashes = new Map(clusters.map((c) => [c.name, createHash("sha256").update(`simulate:${runHex}:${c.name}`).digest("hex")]));
  const ctx: MachineContext = {
    url: o.url,
    tftp,
    adminToken: o.adminToken,
    approval,
    waitMs: (s) => (o.fast ? s * 20 : s * 1000),
    k3sMs: (role) => (o.fast ? (role === "agent" ? 20 : 150) : role === "agent" ? 5_000 : 20_000),
    caHash: (name) => caHashes.get(name)!,
    deadline: Date.now() + o.timeoutMs,
    record: (step, ms) => {
      const list = timings.get(step);
      if (list) list.push(ms);
      else timings.set(step, [ms]);
    },
    retried: (step) => retried.set(step, (retried.get(step) ?? 0) + 1),
  };

  const bar = progress(o.nodes, err);
  const traces: MachineTrace[] = [];
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const t = await runMachine(ctx, ids[next++]!);
      traces.push(t);
      bar.tick(t);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, o.nodes)) }, worker));
  const wallMs = performance.now() - started;
  bar.stop();
  traces.sort((a, b) => a.index - b.index);

  const figures = await Promise.all(clusters.map((c) => checkCluster(o, c, traces)));
  const result: SimulateResult = {
    ok: figures.every((f) => f.failures === 0 && f.problems.length === 0),
    wallMs,
    approval,
    clusters: figures,
    steps: stepFigures(timings, retried),
    traces,
    notes,
  };
  return result;
}

/** The report printed at the end: notes, both tables, broken rules, the verdict. */
export function describeResult(r: SimulateResult): string {
  const failed = r.traces.filter((t) => !t.joined);
  const lines = [
    ...r.notes.map((n) => `note: ${n}`),
    renderTables(r.clusters, r.steps),
    ...r.clusters.flatMap((c) => c.problems.map((p) => `RULE BROKEN in ${c.cluster}: ${p}`)),
    ...failed.slice(0, 10).map((t) => `not joined: ${t.mac} (${t.failure ?? "unknown"})`),
    failed.length > 10 ? `... and ${failed.length - 10} more not joined` : "",
    `${r.traces.length - failed.length}/${r.traces.length} machines joined in ${(r.wallMs / 1000).toFixed(1)} s (approval by ${r.approval}): ${r.ok ? "ok" : "FAILED"}`,
  ];
  return `${lines.filter(Boolean).join("\n")}\n`;
}

/** The figures as plain data, for `--json` and the bench. */
export function resultJson(r: SimulateResult) {
  const failed = r.traces.filter((t) => !t.joined);
  return {
    ok: r.ok,
    wall_ms: Math.round(r.wallMs),
    approval: r.approval,
    machines: r.traces.length,
    joined: r.traces.length - failed.length,
    clusters: r.clusters,
    steps: r.steps,
    not_joined: failed.slice(0, 20).map((t) => ({ mac: t.mac, why: t.failure })),
    notes: r.notes,
  };
}
