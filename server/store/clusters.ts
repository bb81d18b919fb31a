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
