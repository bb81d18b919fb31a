/** Quorum test fixtures: approved machines put straight into the store, and config parsing. */
import { eq } from "drizzle-orm";
import { parse } from "yaml";
import { expect } from "vitest";
import type { Db } from "../../db/client.js";
import { clusters, machines } from "../../db/schema.js";
import { k3sConfigProblems } from "../../server/quorum/k3s-flags.js";
import type { NodeConfigBody } from "../../server/quorum/node-config.js";

/** A valid-looking CA hash a server reports with `ready`. */
export const testCaHash = "c0ffee".padEnd(64, "0");

/** The MAC of test machine n: 52:54:00:xx:yy:zz. */
export function testMac(n: number): string {
  const hex = n.toString(16).padStart(6, "0");
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

/** Insert an approved machine of `clusterId`, as approve leaves it. */
export function addApproved(db: Db, o: { n: number; clusterId: number; now: number; preference?: "auto" | "server" | "agent"; hostname?: string }) {
  return db
    .insert(machines)
    .values({
      mac: testMac(o.n),
      state: "approved",
      clusterId: o.clusterId,
      lastIp: `10.0.${Math.floor(o.n / 250)}.${(o.n % 250) + 1}`,
      rolePreference: o.preference ?? "auto",
      hostname: o.hostname ?? null,
      firstSeenAt: o.now,
      lastSeenAt: o.now,
      stateChangedAt: o.now,
    })
    .returning()
    .get();
}

/** Make cluster `id` want `servers` servers (and optionally a registration address). */
export function shapeCluster(db: Db, id: number, change: { servers?: number; registrationAddress?: string | null }) {
  db.update(clusters).set(change).where(eq(clusters.id, id)).run();
  return db.select().from(clusters).where(eq(clusters.id, id)).get()!;
}

/**
 * Parse a config body's config.yaml, check every key against k3s's flag list for the command
 * the body installs, and return the parsed object.
 */
export function parseConfigBody(body: NodeConfigBody): Record<string, unknown> {
  const parsed = parse(body.config_yaml, { version: "1.1" }) as Record<string, unknown>;
  expect(k3sConfigProblems(body.install.env.INSTALL_K3S_EXEC, parsed)).toEqual([]);
  return parsed;
}

/** The bootstrap token that user-data writes to …/bootstrap-token, as the machine's agent reads it. */
export function bootstrapTokenOf(userData: string): string {
  let found: string | undefined;
  const walk = (v: unknown) => {
    if (found || v === null || typeof v !== "object") return;
    const rec = v as Record<string, unknown>;
    if (typeof rec.path === "string" && rec.path.endsWith("/bootstrap-token") && typeof rec.content === "string") found = rec.content.trim();
    Object.values(rec).forEach(walk);
  };
  walk(parse(userData));
  if (!found) throw new Error("user-data carries no bootstrap token");
  return found;
}
