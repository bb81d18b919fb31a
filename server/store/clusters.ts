/** Clusters: the default one made at first start, and which cluster a machine belongs to. */
import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { clusters, type InstallerProfile } from "../../db/schema.js";
import { recordAudit } from "./audit.js";

export type ClusterRow = typeof clusters.$inferSelect;

/** The profile a fresh install boots: Ubuntu Server's live installer, files under /artifacts/. */
export const defaultInstaller: InstallerProfile = {
  kind: "ubuntu-autoinstall",
  kernel_url: "ubuntu/casper/vmlinuz",
  initrd_urls: ["ubuntu/casper/initrd"],
  kernel_args: "ip=dhcp",
  iso_url: "ubuntu/ubuntu-live-server-amd64.iso",
};

/** A k3s shared secret: 32 random bytes, hex (k3s accepts any string without `:`). */
export function newClusterSecret(): string {
  return randomBytes(32).toString("hex");
}

/** Make the `default` cluster if no cluster exists yet; idempotent across restarts. */
export function ensureDefaultCluster(db: Db, opts: { k3sVersion: string; now: number }): ClusterRow {
  return db.transaction((tx) => {
    const existing = tx.select().from(clusters).where(eq(clusters.isDefault, true)).get();
    if (existing) return existing;
    const any = tx.select().from(clusters).limit(1).get();
    if (any) return any;
    const row = tx
      .insert(clusters)
      .values({
        name: "default",
        servers: 1,
        k3sVersion: opts.k3sVersion,
        isDefault: true,
        installer: defaultInstaller,
        serverToken: newClusterSecret(),
        agentToken: newClusterSecret(),
        createdAt: opts.now,
        updatedAt: opts.now,
      })
      .returning()
      .get();
    recordAudit(tx, {
      at: opts.now,
      actor: "system",
      action: "cluster.created",
      clusterId: row.id,
      detail: { name: row.name, servers: row.servers },
    });
    return row;
  });
}

export function getCluster(db: Queryable, id: number): ClusterRow | undefined {
  return db.select().from(clusters).where(eq(clusters.id, id)).get();
}

export function listClusters(db: Queryable): ClusterRow[] {
  return db.select().from(clusters).orderBy(clusters.id).all();
}

/** IPv4 CIDR membership; IPv6 and malformed input never match. */
export function ipv4InCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => {
    const p = a.split(".");
    if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return undefined;
    return p.reduce((acc, x) => (acc << 8) + Number(x), 0) >>> 0;
  };
  const [base, bitsText] = cidr.split("/");
  const bits = Number(bitsText ?? "32");
  const a = toInt(ip.replace(/^::ffff:/, ""));
  const b = toInt(base ?? "");
  if (a === undefined || b === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (a & mask) === (b & mask);
}

/** The cluster a newly seen machine belongs to: the first whose source CIDRs match, else the default. */
export function matchCluster(db: Queryable, sourceIp: string | undefined): ClusterRow | undefined {
  const all = listClusters(db);
  if (sourceIp) {
    const byCidr = all.find((c) => c.matchCidrs.some((cidr) => ipv4InCidr(sourceIp, cidr)));
    if (byCidr) return byCidr;
  }
  return all.find((c) => c.isDefault) ?? all[0];
}

/** Fields an admin sets on a cluster, in the store's names (already validated). */
export type ClusterFields = {
  name: string;
  servers: number;
  registrationAddress: string | null;
  k3sVersion: string;
  isDefault: boolean;
  installer: InstallerProfile;
  labels: Record<string, string>;
  taints: string[];
  hostnamePattern: string;
  matchCidrs: string[];
  userDataTemplate: string | null;
};

type ClusterAudit = { now: number; actor: string; sourceIp?: string | null };

function nameTaken(db: Queryable, name: string, exceptId?: number): boolean {
  const row = db.select({ id: clusters.id }).from(clusters).where(eq(clusters.name, name)).get();
  return row !== undefined && row.id !== exceptId;
}

/**
 * Create a cluster with fresh server and agent tokens (CSPRNG). Exactly one cluster is the
 * default: a new default takes the flag from the old one, and the first cluster is always it.
 * Returns undefined when the name is taken.
 */
export function createCluster(db: Db, fields: ClusterFields, audit: ClusterAudit): ClusterRow | undefined {
  return db.transaction(
    (tx) => {
      if (nameTaken(tx, fields.name)) return undefined;
      const hasDefault = tx.select({ id: clusters.id }).from(clusters).where(eq(clusters.isDefault, true)).get() !== undefined;
      const isDefault = fields.isDefault || !hasDefault;
      if (isDefault) tx.update(clusters).set({ isDefault: false, updatedAt: audit.now }).where(eq(clusters.isDefault, true)).run();
      const row = tx
        .insert(clusters)
        .values({
          ...fields,
          isDefault,
          serverToken: newClusterSecret(),
          agentToken: newClusterSecret(),
          createdAt: audit.now,
          updatedAt: audit.now,
        })
        .returning()
        .get();
      recordAudit(tx, {
        at: audit.now,
        actor: audit.actor,
        sourceIp: audit.sourceIp ?? null,
        action: "cluster.created",
        clusterId: row.id,
        detail: { name: row.name, servers: row.servers, is_default: row.isDefault },
      });
      return row;
    },
    { behavior: "immediate" },
  );
}

/** Why a cluster change was refused, for the HTTP layer to turn into its error. */
export type ClusterUpdateRefusal = "not_found" | "name_taken" | "last_default" | { serversBelowSeats: number };

/**
 * Change a cluster. `check` runs inside the transaction on the current row (e.g. the seats it
 * holds) and may refuse. The default flag moves, never disappears.
 */
export function updateCluster(
  db: Db,
  id: number,
  change: Partial<ClusterFields>,
  audit: ClusterAudit,
  check: (tx: Queryable, current: ClusterRow) => ClusterUpdateRefusal | undefined = () => undefined,
): ClusterRow | ClusterUpdateRefusal {
  return db.transaction(
    (tx): ClusterRow | ClusterUpdateRefusal => {
      const current = getCluster(tx, id);
      if (!current) return "not_found";
      if (change.name !== undefined && nameTaken(tx, change.name, id)) return "name_taken";
      if (change.isDefault === false && current.isDefault) return "last_default";
      const refusal = check(tx, current);
      if (refusal) return refusal;
      if (change.isDefault === true && !current.isDefault) {
        tx.update(clusters).set({ isDefault: false, updatedAt: audit.now }).where(eq(clusters.isDefault, true)).run();
      }
      const row = tx
        .update(clusters)
        .set({ ...change, updatedAt: audit.now })
        .where(eq(clusters.id, id))
        .returning()
        .get();
      recordAudit(tx, {
        at: audit.now,
        actor: audit.actor,
        sourceIp: audit.sourceIp ?? null,
        action: "cluster.updated",
        clusterId: id,
        detail: { changed: Object.keys(change) },
      });
      return row;
    },
    { behavior: "immediate" },
  );
}
