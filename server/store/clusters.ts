/** Clusters: the default one made at first start, and which cluster a machine belongs to. */
import { randomBytes } from "node:crypto";
import { and, count, eq, inArray, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { clusters, machines, type ClusterRow, type InstallerProfile, type K3sRegistries } from "../../db/schema.js";
import { refuse } from "../errors.js";
import type { InstallPolicy } from "../lifecycle/machine.js";
import { ipv4InCidr } from "../policy/cidr.js";
import { recordAudit } from "./audit.js";
import { fetchSize, pageOf, pastCursor, type Page, type PageRequest } from "./pagination.js";
import { connectionOf, prepared } from "./prepared.js";
import { transact } from "./transaction.js";

export type { ClusterRow } from "../../db/schema.js";

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
  return transact(db, (tx) => {
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

const clusterById = (q: Queryable) =>
  q
    .select()
    .from(clusters)
    .where(eq(clusters.id, sql.placeholder("id")))
    .prepare();

const totalChanges = (q: Queryable) => connectionOf(q).prepare("select total_changes() as n").pluck();
const clusterCache = new WeakMap<object, { changes: number; rows: Map<number, ClusterRow | undefined> }>();

/**
 * Every boot and seed fetch asks for its machine's cluster, which changes a few times a day: the
 * rows read are kept until this connection writes anything (SQLite's total_changes moves), which
 * costs a fraction of a read. Inside a transaction nothing is cached (it may roll back). Another
 * process writing the file is not seen until this one writes; edgejoin's own CLI changes
 * clusters through the HTTP API.
 */
export function getCluster(db: Queryable, id: number): ClusterRow | undefined {
  const connection = connectionOf(db);
  if (connection.inTransaction) return prepared(db, clusterById).get({ id });
  const changes = prepared(db, totalChanges).get() as number;
  let cache = clusterCache.get(connection);
  if (!cache || cache.changes !== changes) {
    cache = { changes, rows: new Map() };
    clusterCache.set(connection, cache);
  }
  if (!cache.rows.has(id)) cache.rows.set(id, prepared(db, clusterById).get({ id }));
  return cache.rows.get(id);
}

export function listClusters(db: Queryable): ClusterRow[] {
  return db.select().from(clusters).orderBy(clusters.id).all();
}

/** Clusters, oldest first, one page (the admin's list). */
export function listClustersPage(db: Queryable, page: PageRequest): Page<ClusterRow> {
  const rows = db.select().from(clusters).where(pastCursor(clusters.id, page)).orderBy(clusters.id).limit(fetchSize(page)).all();
  return pageOf(rows, page, (r) => r.id);
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
  installPolicy: InstallPolicy;
  /** k3s registries.yaml as data; null or left out = none. */
  registries?: K3sRegistries | null;
};

type ClusterAudit = { now: number; actor: string; sourceIp?: string | null };

function nameTaken(db: Queryable, name: string, exceptId?: number): boolean {
  const row = db.select({ id: clusters.id }).from(clusters).where(eq(clusters.name, name)).get();
  return row !== undefined && row.id !== exceptId;
}

/**
 * Create a cluster with fresh server and agent tokens (CSPRNG). Exactly one cluster is the
 * default: a new default takes the flag from the old one, and the first cluster is always it.
 */
export function createCluster(db: Db, fields: ClusterFields, audit: ClusterAudit): ClusterRow {
  return transact(db, (tx) => {
    if (nameTaken(tx, fields.name)) return refuse("conflict", `a cluster named ${fields.name} already exists`);
    const hasDefault = tx.select({ id: clusters.id }).from(clusters).where(eq(clusters.isDefault, true)).get() !== undefined;
    const isDefault = fields.isDefault || !hasDefault;
    if (isDefault) tx.update(clusters).set({ isDefault: false, updatedAt: audit.now }).where(eq(clusters.isDefault, true)).run();
    const row = tx
      .insert(clusters)
      .values({ ...fields, isDefault, serverToken: newClusterSecret(), agentToken: newClusterSecret(), createdAt: audit.now, updatedAt: audit.now })
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
  });
}

/** Server seats held in a cluster (init included). */
export function countServerSeats(db: Queryable, clusterId: number): number {
  const row = db
    .select({ n: count() })
    .from(machines)
    .where(and(eq(machines.clusterId, clusterId), inArray(machines.role, ["init", "server"])))
    .get();
  return row?.n ?? 0;
}

/**
 * Change a cluster. The default flag moves, never disappears; `servers` cannot go below the
 * server seats held (retire first).
 */
export function updateCluster(db: Db, id: number, change: Partial<ClusterFields>, audit: ClusterAudit): ClusterRow {
  return transact(db, (tx) => {
    const current = getCluster(tx, id);
    if (!current) return refuse("not_found", `no cluster ${id}`);
    if (change.name !== undefined && nameTaken(tx, change.name, id)) return refuse("conflict", `a cluster named ${change.name} already exists`);
    if (change.isDefault === false && current.isDefault) {
      return refuse("validation_failed", "is_default: exactly one cluster is the default; make another cluster the default instead");
    }
    const held = change.servers === undefined ? 0 : countServerSeats(tx, id);
    if (change.servers !== undefined && change.servers < held) {
      return refuse(
        "validation_failed",
        `servers: ${held} machines hold server seats in this cluster; retire servers before lowering the desired count below that`,
      );
    }
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
  });
}

/** The architectures a cluster's machines reported (iPXE `${buildarch}` or the agent's), for its artifact check. */
export function clusterArches(db: Queryable, clusterId: number): string[] {
  return db
    .selectDistinct({ arch: machines.arch })
    .from(machines)
    .where(eq(machines.clusterId, clusterId))
    .all()
    .flatMap((r) => (r.arch ? [r.arch] : []));
}
