/**
 * The two scenarios of the machine lab, as steps that act and observe; the test asserts on their
 * reports and `npm run lab` prints them. Each wait is bounded and fails early when a machine or
 * the server dies.
 */
import { createHash } from "node:crypto";
import { siteAddressing, waitFor, type Machine } from "../helpers/netlab.js";
import { standinInstaller } from "./installer-standin.js";
import { bootNeighbour, type NeighbourResult } from "./neighbour.js";
import { labInstaller, waitForState, type MachineLab } from "./scenario.js";

type Cluster = { id: number; name: string; is_default: boolean; ca_hash: string | null };
type Node = {
  id: number;
  mac: string;
  state: string;
  role: string | null;
  role_assigned_at: string | null;
  ready_at: string | null;
  last_ip: string | null;
  approved_by: string | null;
};

/** What the stand-in installer did on the machine's first power-on (issue 9, point 2). */
export type InstallReport = {
  /** What iPXE ran on each PXE boot of the first power-on, in order: the installer once, then local disk. */
  bootScripts: ("installer" | "local-disk")[];
  /** How many times the installer started on this machine, over its whole first power-on. */
  installerRuns: number;
  /** edgejoin's HTTP status for each of the installer's webhook posts, in order. */
  webhookStatuses: number[];
  /** The installer's console lines, for the report. */
  installerLines: string[];
  /** /etc/edgejoin-installed as the installer left it on the disk it wrote. */
  installedMarker: string | undefined;
};

/** What a neighbour on the LAN got by enrolling as the joined machine, and what it changed (issue 9, point 6). */
export type NeighbourReport = NeighbourResult & {
  /** The victim's state, its conflicts and its cluster's quorum health right after the attempt. */
  victimState: string | undefined;
  conflicts: { source_ip?: string }[] | undefined;
  quorumHealth: string;
};

/** What one machine's whole life showed. */
export type LifeReport = {
  machine: { id: number; state: string; role: string | null };
  install: InstallReport;
  neighbour: NeighbourReport;
  /** config.yaml as edgejoin renders it for this machine (fetched with the machine's own credential). */
  renderedConfig: string;
  /** /etc/rancher/k3s/config.yaml read from the machine's disk after a clean power-off. */
  diskConfig: string | undefined;
  /** sha256 of the machine's server-ca.crt, and the CA hash edgejoin recorded for the cluster. */
  diskCaHash: string | undefined;
  clusterCaHash: string | null;
  /** The agent's own status file. */
  agentStatus: string | undefined;
  /**
   * The reboot, started as soon as the disk was read. It runs beside whatever the caller does
   * next (most of it is the firmware's network boot timeouts), so await it last.
   */
  reboot: Promise<RebootReport>;
};

/** What powering the installed machine on again showed. */
export type RebootReport = {
  bootScript: "local-disk" | "installer" | "none";
  bootedFromDisk: boolean;
  /** Requests after the reboot that only an unenrolled machine makes (seed, enroll, node config). */
  enrollsAfterReboot: string[];
  stateAfter: string | undefined;
  /** The machine's cluster's quorum health once the reboot is over. */
  quorumHealth: string;
};

/** What three machines forming a 3-server quorum showed. */
export type QuorumReport = {
  roles: string[];
  states: string[];
  /** Who approved each machine: the lab's rule, never an admin call. */
  approvedBy: (string | null)[];
  /** For each joining server in seat order: when it got its config and when the one before it was ready. */
  releaseOrder: { mac: string; afterMac: string; configAt: number; previousReadyAt: number }[];
  joinerTokensPinCa: boolean;
  quorum: { health: string; servers_ready: number; servers: { mac: string; role: string; state: string; ip: string | null }[] };
  quorumTable: string;
};

/** Between two power-ons: longer than OVMF's ~4 s of collecting DHCP offers. */
const powerOnStaggerMs = 8_000;

/**
 * How long the slowest waits may take: three TCG guests beside the reboot and the neighbour, on
 * two cores shared with the integration tier, are slow, not stuck. The tests' timeouts derive from these.
 */
export const quorumJoinDeadlineMs = 1_200_000;
export const rebootDeadlineMs = 900_000;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function ok<T>(call: Promise<{ status: number; body: T }>, what: string, status = 200): Promise<T> {
  const res = await call;
  if (res.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

const dies = (ml: MachineLab, machines: Machine[]) => () => ml.site.edgejoin.process.death() ?? machines.map((m) => m.process.death()).find(Boolean);

/** Approve `machine` once edgejoin has it `pending` (enrolled by its agent). */
async function approveWhenPending(ml: MachineLab, machine: Machine, timeoutMs: number): Promise<number> {
  const row = await waitForState(ml, machine, "pending", timeoutMs);
  await ok(ml.api(`POST`, `/api/v1/nodes/${row.id}/approve`, {}), `approve ${machine.name}`);
  ml.watch.note(machine.mac, "approved through the admin API");
  return row.id;
}

/**
 * What one machine did at or after `since` that it does only before it has joined: seed
 * fetches for its MAC, enrolls, node config polls and progress events. Attributed by MAC and
 * machine id from edgejoin's log, never by address: other machines are booting meanwhile.
 */
function enrollTraffic(ml: MachineLab, mac: string, machineId: number, since: number): string[] {
  return ml.site.edgejoin
    .logLines()
    .filter((l) => l.time >= since)
    .filter(
      (l) =>
        (l.msg === "request" && String(l.path).includes(`/cloud-init/${mac}/`)) ||
        ((l.msg === "machine enrolled" || l.msg === "enroll refused") && l.mac === mac) ||
        ((l.msg === "node config" || l.msg === "node event") && l.machineId === machineId),
    )
    .map((l) => (l.msg === "request" ? `${String(l.method)} ${String(l.path)}` : String(l.msg)));
}

/** Point the default cluster at the lab's cloud image with `servers` desired servers. */
async function defaultClusterForLab(ml: MachineLab): Promise<Cluster> {
  const { clusters } = await ok(ml.api<{ clusters: Cluster[] }>("GET", "/api/v1/clusters"), "list clusters");
  const cluster = clusters.find((c) => c.is_default);
  if (!cluster) throw new Error("edgejoin made no default cluster at first start");
  return ok(ml.api<Cluster>("PATCH", `/api/v1/clusters/${cluster.id}`, { installer: standinInstaller, servers: 1 }), "set the default cluster's installer");
}

/** What iPXE ran, in console order: edgejoin's install and local-disk scripts announce themselves. */
function bootScripts(serial: string, mac: string): ("installer" | "local-disk")[] {
  const re = new RegExp(`edgejoin: (?:(installing ${mac})|(${mac} is installed - booting from its local disk))`, "g");
  return [...serial.matchAll(re)].map((m) => (m[1] ? "installer" : "local-disk"));
}

/**
 * The first power-on of a machine with blank disks: iPXE boots the stand-in installer, which
 * writes the disks, reports to the webhook and reboots with PXE still first; the next PXE boot
 * must get local disk. Fails as soon as it gets the installer again.
 */
async function followInstaller(ml: MachineLab, m: Machine): Promise<void> {
  const failIf = () => dies(ml, [m])() ?? /edgejoin-installer: FAILED[^\r\n]*/.exec(m.serial())?.[0];
  await waitFor(`${m.name}'s stand-in installer to finish`, () => (/edgejoin-installer: done - rebooting/.test(m.serial()) ? true : undefined), {
    timeoutMs: 420_000,
    intervalMs: 500,
    failIf,
  });
  ml.watch.note(m.mac, "installer done, rebooting (PXE first)");
  const second = await waitFor(`${m.name}'s second PXE boot to run a boot script`, () => bootScripts(m.serial(), m.mac)[1], {
    timeoutMs: 180_000,
    intervalMs: 500,
    failIf,
  });
  if (second === "installer") {
    throw new Error(
      `${m.name}'s second PXE boot, after its installer reported finish SUCCESS, got the installer again instead of its local disk (/boot.ipxe must answer local disk once the installer reported success)`,
    );
  }
}

/**
 * One machine, whole life: a neighbour guest comes up first and reads the machine's seed (a token
 * for it, before it enrolled); power-on with blank disks → the stand-in installer writes them and
 * reports → reboot, PXE first → local disk → the installed system's cloud-init → agent enrolls
 * → approved → joined as init server. Then the neighbour enrolls as it; a clean power-off,
 * its disk read; then power-on again (see `reboot`) → local-disk script → its own disk boots, no
 * second enrollment.
 */
export async function runOneMachineLife(ml: MachineLab): Promise<LifeReport> {
  const cluster = await defaultClusterForLab(ml);
  const mac = "52:54:00:1a:b0:01";
  // Up before m1 is powered on (so its DHCP cannot overlap m1's firmware PXE either): the token
  // it reads from m1's seed then is one that m1's own enrollment has not made worthless yet.
  const neighbour = await bootNeighbour(ml, { victimMac: mac, tap: 4 });
  try {
    if (!(await neighbour.captured())) throw new Error("the neighbour found no bootstrap token in m1's seed before m1 was powered on");
    const m1 = await ml.powerOn({ name: "m1", mac, tap: 0, blank: true });
    await followInstaller(ml, m1);
    // From the installer's reboot: PXE, local disk (after the firmware's HTTP boot timeout), the installed system's first boot.
    const id = await approveWhenPending(ml, m1, 600_000);
    await waitForState(ml, m1, "joined", 300_000);
    // The agent writes its `joined` marker right after `ready` is accepted; give it that moment.
    await new Promise((r) => setTimeout(r, 5_000));
    const install: InstallReport = {
      bootScripts: bootScripts(m1.serial(), mac),
      installerRuns: (m1.serial().match(/edgejoin-installer: started/g) ?? []).length,
      webhookStatuses: ml.site.edgejoin
        .logLines()
        .filter((l) => l.msg === "request" && l.method === "POST" && String(l.path).startsWith(`/install-progress/${mac.replaceAll(":", "")}`))
        .map((l) => Number(l.status)),
      installerLines: m1.serial().match(/edgejoin-installer: [^\r\n]*/g) ?? [],
      installedMarker: undefined,
    };

    const attempt = await neighbour.attack();
    await neighbour.stop();
    const victim = await ok(ml.api<Node & { conflicts?: { source_ip?: string }[] }>("GET", `/api/v1/nodes/${id}`), "get m1");
    const quorumNow = await ok(ml.api<{ health: string }>("GET", `/api/v1/clusters/${cluster.id}/quorum`), "m1's cluster quorum");
    const neighbourReport: NeighbourReport = { ...attempt, victimState: victim.state, conflicts: victim.conflicts, quorumHealth: quorumNow.health };
    // The admin looks at the refused enroll on m1, then dismisses it: until then m1's credential gets no k3s config.
    if ((victim.conflicts?.length ?? 0) > 0) {
      await ok(ml.api("POST", `/api/v1/nodes/${id}/approve`, { dismiss_conflicts: true }), "dismiss m1's conflicts");
    }

    await ml.powerOff(m1);
    return await afterLife(ml, { m1, mac, id, cluster, install, neighbour: neighbourReport });
  } finally {
    await neighbour.stop();
  }
}

async function afterLife(
  ml: MachineLab,
  life: { m1: Machine; mac: string; id: number; cluster: Cluster; install: InstallReport; neighbour: NeighbourReport },
): Promise<LifeReport> {
  const { m1, mac, id, cluster } = life;
  const disk = await ml.readDisk(m1, [
    "/etc/edgejoin-installed",
    "/etc/rancher/k3s/config.yaml",
    "/var/lib/edgejoin-agent/credential",
    "/var/lib/edgejoin-agent/status",
    "/var/lib/rancher/k3s/server/tls/server-ca.crt",
  ]);
  const credential = disk["/var/lib/edgejoin-agent/credential"]?.trim();
  if (!credential) throw new Error("m1's disk holds no node credential in /var/lib/edgejoin-agent/credential");
  // A request with a node's credential also moves that node's address (node-ip, tls-san) to its
  // source: this one comes from the lab's own address, so put m1's back before comparing.
  const { last_ip: m1Ip } = await ok(ml.api<Node>("GET", `/api/v1/nodes/${id}`), "get m1");
  const fetched = await ok(ml.api<{ config_yaml: string }>("GET", "/api/v1/node/config", undefined, credential), "node config with m1's credential");
  const rendered = {
    config_yaml: m1Ip
      ? fetched.config_yaml.replace(new RegExp(`(?<![\\d.])${siteAddressing.edgejoin.replaceAll(".", "\\.")}(?![\\d])`, "g"), m1Ip)
      : fetched.config_yaml,
  };
  const after = await ok(ml.api<Cluster>("GET", `/api/v1/clusters/${cluster.id}`), "get cluster");
  const ca = disk["/var/lib/rancher/k3s/server/tls/server-ca.crt"];

  // Power on again: same MAC, same disks. Marked handled here; the caller awaits it for the verdict.
  const reboot = rebootFromDisk(ml, mac, id, cluster.id);
  reboot.catch(() => undefined);
  return {
    machine: { id, state: ml.machine(mac)!.state, role: ml.machine(mac)!.role },
    install: { ...life.install, installedMarker: disk["/etc/edgejoin-installed"]?.trim() },
    neighbour: life.neighbour,
    renderedConfig: rendered.config_yaml,
    diskConfig: disk["/etc/rancher/k3s/config.yaml"],
    diskCaHash: ca === undefined ? undefined : sha256(ca),
    clusterCaHash: after.ca_hash,
    agentStatus: disk["/var/lib/edgejoin-agent/status"]?.trim(),
    reboot,
  };
}

/** Power an installed machine on again: the local-disk script, its own disk, no second enrollment. */
async function rebootFromDisk(ml: MachineLab, mac: string, machineId: number, clusterId: number): Promise<RebootReport> {
  const again = await ml.powerOn({ name: "m1-reboot", mac, tap: 0, disk: ml.lab.path("m1.overlay.qcow2"), esp: ml.lab.path("m1.esp.qcow2") });
  try {
    const bootScript = await waitFor(
      "m1-reboot to run a boot script",
      () => {
        const s = again.serial();
        if (s.includes(`edgejoin: ${mac} is installed - booting from its local disk`)) return "local-disk" as const;
        if (s.includes(`edgejoin: installing ${mac}`)) return "installer" as const;
        return undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, failIf: dies(ml, [again]) },
    );
    let bootedFromDisk = false;
    if (bootScript === "local-disk") {
      // The login prompt shares its line with later console output; cloud-init's last line comes after the agent would start.
      const up = /Cloud-init v\. [\d.]+ finished|login: /;
      await waitFor("m1-reboot to boot its own disk up to cloud-init's end or a login prompt", () => (up.test(again.serial()) ? true : undefined), {
        timeoutMs: rebootDeadlineMs,
        intervalMs: 500,
        failIf: dies(ml, [again]),
      });
      bootedFromDisk = /Linux version \d/.test(again.serial());
      // The agent would have started by now (multi-user.target); give a second enrollment time to show.
      await new Promise((r) => setTimeout(r, 10_000));
    }
    const quorum = await ok(ml.api<{ health: string }>("GET", `/api/v1/clusters/${clusterId}/quorum`), "m1's cluster quorum after its reboot");
    return {
      bootScript,
      bootedFromDisk,
      enrollsAfterReboot: enrollTraffic(ml, mac, machineId, again.poweredOnAt),
      stateAfter: ml.machine(mac)?.state,
      quorumHealth: quorum.health,
    };
  } finally {
    await again.stop();
  }
}

/** The quorum as a table for people. */
export function formatQuorum(q: QuorumReport["quorum"] & { name?: string; servers_desired?: number }): string {
  const rows = q.servers.map((s) => `  ${s.role.padEnd(7)} ${s.mac}  ${(s.ip ?? "-").padEnd(15)} ${s.state}`);
  return [
    `quorum of ${q.name ?? "cluster"}: ${q.health}, ${q.servers_ready}/${q.servers_desired ?? "?"} servers ready`,
    "  role    mac                ip              state",
    ...rows,
  ].join("\n");
}

/**
 * Three machines at once against a cluster that wants 3 servers, approved by a rule (`limit: 3`,
 * the site's LAN) as each enrolls, with no admin call;
 * one init, two joining servers released one at a time as the previous one reports ready.
 */
export async function runThreeServerQuorum(ml: MachineLab): Promise<QuorumReport> {
  const cluster = await ok(
    ml.api<Cluster>("POST", "/api/v1/clusters", { name: "trio", servers: 3, is_default: true, installer: labInstaller }),
    "create the 3-server cluster",
    201,
  );
  // Zero touch: "the next 3 machines on the site's LAN" (their enroll comes from a DHCP address in it).
  await ok(
    ml.api("POST", "/api/v1/rules", { name: "trio-lab", cluster_id: cluster.id, match: { cidr: "10.77.0.0/24" }, limit: 3 }),
    "add the approval rule",
    201,
  );
  const macs = ["52:54:00:1a:b0:02", "52:54:00:1a:b0:03", "52:54:00:1a:b0:04"];
  const machines: Machine[] = [];
  for (const [i, mac] of macs.entries()) {
    // Seconds apart, as a technician plugs them in: dnsmasq (no-ping) offers the same free address
    // to two clients whose DHCP exchanges overlap, NAKs the later REQUEST, and OVMF's PXE client
    // gives up on a NAK instead of starting over (seen here: "PXE-E07: Network device error").
    if (i > 0) await new Promise((r) => setTimeout(r, powerOnStaggerMs));
    machines.push(await ml.powerOn({ name: `m${i + 2}`, mac, tap: i + 1 }));
  }

  // Nobody approves them: the rule does, as each agent enrolls.
  await Promise.all(machines.map((m) => waitForState(ml, m, "joined", quorumJoinDeadlineMs)));
  await new Promise((r) => setTimeout(r, 5_000));

  const nodes = await Promise.all(machines.map((m) => ok(ml.api<Node>("GET", `/api/v1/nodes/${ml.machine(m.mac)!.id}`), `get ${m.name}`)));
  const seats = [...nodes].sort((a, b) => Date.parse(a.role_assigned_at ?? "") - Date.parse(b.role_assigned_at ?? ""));
  const releaseOrder = seats.slice(1).map((n, i) => ({
    mac: n.mac,
    afterMac: seats[i]!.mac,
    configAt: Date.parse(n.role_assigned_at ?? ""),
    previousReadyAt: Date.parse(seats[i]!.ready_at ?? ""),
  }));
  const quorum = await ok(
    ml.api<QuorumReport["quorum"] & { name: string; servers_desired: number; ca_hash: string | null }>("GET", `/api/v1/clusters/${cluster.id}/quorum`),
    "quorum",
  );

  // The joiners' config on their own disks pins the init server's CA.
  await Promise.all(machines.map((m) => ml.powerOff(m)));
  const configs = await Promise.all(machines.map((m) => ml.readDisk(m, ["/etc/rancher/k3s/config.yaml"])));
  const joinerConfigs = configs
    .map((c, i) => ({ yaml: c["/etc/rancher/k3s/config.yaml"] ?? "", role: ml.machine(machines[i]!.mac)?.role }))
    .filter((c) => c.role === "server");
  const joinerTokensPinCa =
    joinerConfigs.length === 2 && quorum.ca_hash !== null && joinerConfigs.every((c) => c.yaml.includes(`K10${quorum.ca_hash}::server:`));

  return {
    roles: machines.map((m) => ml.machine(m.mac)?.role ?? "none"),
    states: machines.map((m) => ml.machine(m.mac)?.state ?? "none"),
    approvedBy: nodes.map((n) => n.approved_by),
    releaseOrder,
    joinerTokensPinCa,
    quorum,
    quorumTable: formatQuorum(quorum),
  };
}
