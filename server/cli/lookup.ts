/**
 * What an admin types for a machine or a cluster, turned into its id: a machine by id, MAC or
 * serial (the sticker on the NUC); a cluster by id or name.
 */
import { type AdminClient, CliError } from "./client.js";

/** A machine as the admin API lists it (the fields the CLI reads). */
export type NodeView = {
  id: number;
  mac: string;
  serial: string | null;
  uuid: string | null;
  hostname: string | null;
  state: string;
  role: string | null;
  cluster_id: number | null;
  [field: string]: unknown;
};

/** A cluster as the admin API lists it (the fields the CLI reads). */
export type ClusterView = { id: number; name: string; [field: string]: unknown };

const macPattern = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;

/** `52-54-00-AA-BB-CC`, `525400aabbcc` → `52:54:00:aa:bb:cc`; anything else → undefined. */
export function normalizeMac(text: string): string | undefined {
  if (!macPattern.test(text)) return undefined;
  const hex = text.replace(/[:-]/g, "").toLowerCase();
  return hex.match(/../g)!.join(":");
}

/** The machine `ref` names: an id, a MAC in any usual spelling, or a serial (exact, then case-insensitive). */
export async function resolveMachine(client: AdminClient, ref: string): Promise<NodeView> {
  if (/^[1-9]\d{0,14}$/.test(ref)) return client.json<NodeView>("GET", `/api/v1/nodes/${ref}`);
  const mac = normalizeMac(ref);
  // `q` narrows the listing where the server supports it; the match itself is exact, here.
  let nodes: NodeView[];
  try {
    nodes = await client.all<NodeView>("/api/v1/nodes", "nodes", { q: mac ?? ref });
  } catch (err) {
    if (!(err instanceof CliError) || !err.message.startsWith("422 ")) throw err;
    nodes = await client.all<NodeView>("/api/v1/nodes", "nodes");
  }
  const byMac = mac === undefined ? [] : nodes.filter((n) => n.mac === mac);
  if (byMac.length === 1) return byMac[0]!;
  const exact = nodes.filter((n) => n.serial === ref);
  const bySerial = exact.length > 0 ? exact : nodes.filter((n) => n.serial !== null && n.serial.toLowerCase() === ref.toLowerCase());
  if (bySerial.length === 1) return bySerial[0]!;
  if (bySerial.length > 1) {
    throw new CliError(`serial ${ref} matches machines ${bySerial.map((n) => n.id).join(", ")}: name one by id or MAC`);
  }
  throw new CliError(`no machine with ${mac ? "MAC" : "id, MAC or serial"} ${ref}`);
}

/** The cluster `ref` names: an id or a name. */
export async function resolveCluster(client: AdminClient, ref: string): Promise<ClusterView> {
  if (/^[1-9]\d{0,14}$/.test(ref)) return client.json<ClusterView>("GET", `/api/v1/clusters/${ref}`);
  const clusters = await client.all<ClusterView>("/api/v1/clusters", "clusters");
  const found = clusters.find((c) => c.name === ref);
  if (!found) throw new CliError(`no cluster named ${ref} (edgejoin clusters ls lists them)`);
  return found;
}
