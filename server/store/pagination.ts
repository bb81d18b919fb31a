/**
 * Keyset pagination over integer ids, the one way every admin list pages: ask for `limit + 1`
 * rows past the cursor's id, hand back `limit` and where the next page starts. A page never
 * shifts when rows are added meanwhile (unlike OFFSET), and costs one index range scan.
 */
import { gt, lt, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";

/** A page asked for: how many rows, and the id the previous page ended at. */
export type PageRequest = { limit: number; after?: number | undefined };

/** One page: its rows and the id the next page starts after (null on the last page). */
export type Page<T> = { items: T[]; nextAfter: number | null };

/** The keyset condition: ids past the cursor in the list's order (`asc`: larger, `desc`: smaller). */
export function pastCursor(id: SQLiteColumn, page: PageRequest, order: "asc" | "desc" = "asc"): SQL | undefined {
  if (page.after === undefined) return undefined;
  return order === "asc" ? gt(id, page.after) : lt(id, page.after);
}

/** How many rows to fetch: one more than the page, to know whether another page follows. */
export function fetchSize(page: PageRequest): number {
  return page.limit + 1;
}

/** Cut the fetched rows to the page and say where the next one starts. */
export function pageOf<T>(rows: T[], page: PageRequest, idOf: (row: T) => number): Page<T> {
  if (rows.length <= page.limit) return { items: rows, nextAfter: null };
  const items = rows.slice(0, page.limit);
  return { items, nextAfter: idOf(items[items.length - 1]!) };
}
