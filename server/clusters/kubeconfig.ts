/**
 * The cluster admin's kubeconfig that the init server's agent hands in (k3s writes it to
 * /etc/rancher/k3s/k3s.yaml, pointing at 127.0.0.1): checked on the way in, and pointed at the
 * cluster's registration address on the way out. Pure: YAML in, YAML out.
 */
import { parse, stringify } from "yaml";

/** Largest kubeconfig taken; k3s's is about 3 KiB. */
export const maxKubeconfigBytes = 64 * 1024;

type Named<K extends string> = { name?: unknown } & Partial<Record<K, Record<string, unknown>>>;
type Kubeconfig = {
  kind?: unknown;
  clusters?: Named<"cluster">[];
  contexts?: Named<"context">[];
  users?: Named<"user">[];
  "current-context"?: unknown;
  [key: string]: unknown;
};

function load(text: string): Kubeconfig | string {
  let doc: unknown;
  try {
    // No aliases: a few bytes of YAML must not expand into gigabytes.
    doc = parse(text, { maxAliasCount: 0 });
  } catch (err) {
    return `it is not YAML (${(err as Error).message.split("\n")[0]})`;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "it is not a YAML mapping";
  const k = doc as Kubeconfig;
  if (k.kind !== "Config") return "kind must be Config";
  if (!Array.isArray(k.clusters) || k.clusters.length === 0) return "it names no cluster";
  for (const c of k.clusters) {
    const server = c?.cluster?.server;
    if (typeof server !== "string" || !/^https:\/\/[^/\s]+/.test(server)) return "every cluster needs an https:// server";
  }
  if (!Array.isArray(k.users) || k.users.length === 0) return "it names no user";
  return k;
}

/** Why `text` is not a kubeconfig edgejoin should keep, or undefined when it is one. */
export function kubeconfigProblem(text: string): string | undefined {
  if (Buffer.byteLength(text, "utf8") > maxKubeconfigBytes) return `it is larger than ${maxKubeconfigBytes / 1024} KiB`;
  const k = load(text);
  return typeof k === "string" ? k : undefined;
}

/** `host` as the authority of an https URL (IPv6 in brackets), with `port`. */
function authority(host: string, port: string): string {
  return `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

/**
 * The kubeconfig with every cluster's server at `host` (the port k3s wrote is kept, 6443), and
 * k3s's one cluster, user and context (all named `default`) renamed after the edgejoin cluster,
 * so kubeconfigs of several clusters merge without clashing.
 */
export function pointKubeconfigAt(text: string, o: { host: string; name: string }): string {
  const k = load(text);
  if (typeof k === "string") throw new Error(`stored kubeconfig is invalid: ${k}`);
  for (const c of k.clusters!) {
    const url = new URL(String(c.cluster!.server));
    c.cluster!.server = `https://${authority(o.host, url.port || "6443")}`;
  }
  const single = k.clusters!.length === 1 && k.users!.length === 1 && Array.isArray(k.contexts) && k.contexts.length === 1;
  if (single) {
    k.clusters![0]!.name = o.name;
    k.users![0]!.name = o.name;
    const ctx = k.contexts![0]!;
    ctx.name = o.name;
    if (ctx.context) {
      ctx.context.cluster = o.name;
      ctx.context.user = o.name;
    }
    k["current-context"] = o.name;
  }
  return stringify(k);
}
