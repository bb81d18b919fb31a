/**
 * The admin's inventory: machines filtered and paged, and finding one machine by whatever an
 * admin has at hand — its id, its MAC, or the serial on its sticker.
 */
import { and, asc, eq, isNotNull, isNull, or, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Queryable } from "../../db/client.js";
import { machines, type MachineRow } from "../../db/schema.js";
import { parseMac } from "../identity.js";
import type { MachineState } from "../lifecycle/machine.js";
import { refuse, type Refusal } from "../errors.js";
import { fetchSize, pageOf, pastCursor, type Page, type PageRequest } from "./pagination.js";

/** What `GET /api/v1/nodes` filters by; every filter given must hold. */
export type InventoryFilter = {
  state?: MachineState | undefined;
  clusterId?: number | undefined;
  /** Text search over MAC, serial, hostname, manufacturer and product (case-insensitive substring). */
  q?: string | undefined;
  /** true: only machines whose installer reported a failure since their last enroll; false: only the others. */
  installFailed?: boolean | undefined;
};

/** `%`, `_` and `\` match themselves in the search text, not as LIKE wildcards. */
function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** One page of machines, oldest first. */
export function listMachinesPage(db: Queryable, f: InventoryFilter, page: PageRequest): Page<MachineRow> {
  const text = f.q === undefined ? undefined : likePattern(f.q);
  const textMatch = (col: SQLiteColumn) => sql`lower(${col}) like ${text} escape '\\'`;
  const rows = db
    .select()
    .from(machines)
    .where(
      and(
        f.state ? eq(machines.state, f.state) : undefined,
        f.clusterId !== undefined ? eq(machines.clusterId, f.clusterId) : undefined,
        f.installFailed === undefined ? undefined : f.installFailed ? isNotNull(machines.installFailedAt) : isNull(machines.installFailedAt),
        text === undefined
          ? undefined
          : or(
              textMatch(machines.mac),
              textMatch(machines.serial),
              textMatch(machines.hostname),
              textMatch(machines.manufacturer),
              textMatch(machines.product),
            ),
        pastCursor(machines.id, page),
      ),
    )
    .orderBy(asc(machines.id))
    .limit(fetchSize(page))
    .all();
  return pageOf(rows, page, (r) => r.id);
}

/** Serial search keeps LIKE out of the way: the serial is matched whole, case-insensitively. */
function bySerial(db: Queryable, serial: string): MachineRow[] {
  return db.select().from(machines).where(sql`lower(${machines.serial}) = ${serial.toLowerCase()}`).orderBy(asc(machines.id)).limit(5).all();
}

/**
 * The machine an admin means by `ref`: digits are an id, a MAC in any common spelling is a MAC,
 * anything else is a serial (which must name exactly one live machine). A Refusal says why not.
 */
export function findMachineByRef(db: Queryable, ref: string): MachineRow | Refusal {
  if (/^[1-9]\d{0,14}$/.test(ref)) {
    const m = db
      .select()
      .from(machines)
      .where(eq(machines.id, Number(ref)))
      .get();
    return m ?? refuse("not_found", `no machine with id ${ref}`);
  }
  const mac = parseMac(ref);
  if (mac) {
    const m = db.select().from(machines).where(eq(machines.mac, mac)).get();
    return m ?? refuse("not_found", `no machine with MAC ${mac}`);
  }
  const found = bySerial(db, ref);
  // A retired machine's serial may be back on a reinstalled one: prefer the live one.
  const live = found.filter((m) => m.state !== "retired");
  const pick = live.length > 0 ? live : found;
  if (pick.length === 1) return pick[0]!;
  if (pick.length === 0) return refuse("not_found", `no machine with id, MAC or serial ${JSON.stringify(ref)}`);
  return refuse("conflict", `serial ${JSON.stringify(ref)} names machines ${pick.map((m) => m.id).join(", ")}: use the id or MAC`);
}
