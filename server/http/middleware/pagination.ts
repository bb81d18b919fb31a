/**
 * The one pagination contract of every admin list: query `limit` (default 100, at most 1000) and
 * `cursor` (opaque, from the previous page's `next_cursor`); the body keeps its plural key and adds
 * `next_cursor`, null on the last page. `pagedQuery(shape)` adds both to a list's own filters.
 */
import { z } from "zod";
import type { Page, PageRequest } from "../../store/pagination.js";

/** The page size when a client does not say. */
export const defaultPageSize = 100;
/** The largest page a client may ask for. */
export const maxPageSize = 1000;

const cursorPrefix = "v1:";

/** The cursor a client sends back for the page after the row with this id. */
export function encodeCursor(id: number): string {
  return Buffer.from(`${cursorPrefix}${id}`, "utf8").toString("base64url");
}

/** The id a cursor stands for, or undefined when it is not one edgejoin gave. */
export function decodeCursor(cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const m = /^v1:([1-9]\d{0,14})$/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Query `limit`: a whole number from 1 to `maxPageSize`; for a list whose cursor is not a row id. */
export const pageLimit = z
  .string()
  .regex(/^\d{1,7}$/, `limit must be a whole number from 1 to ${maxPageSize}`)
  .transform(Number)
  .refine((n) => n >= 1 && n <= maxPageSize, `limit must be from 1 to ${maxPageSize}`)
  .optional();

const pageFields = {
  limit: pageLimit,
  cursor: z
    .string()
    .transform((c, ctx) => {
      const id = decodeCursor(c);
      if (id === undefined) {
        ctx.addIssue({ code: "custom", message: "cursor must be a next_cursor value from an earlier page of this list" });
        return z.NEVER;
      }
      return id;
    })
    .optional(),
};

/** A list's query schema: its own filters plus `limit` and `cursor`; unknown parameters are refused. */
export function pagedQuery<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.object({ ...shape, ...pageFields }).strict();
}

/** The store's page request from a validated query. */
export function pageRequest(q: { limit?: number | undefined; cursor?: number | undefined }): PageRequest {
  return { limit: q.limit ?? defaultPageSize, after: q.cursor };
}

/** The body of a list answer: `{[key]: items, next_cursor}`. */
export function pageBody<Key extends string, T, Out>(key: Key, page: Page<T>, view: (row: T) => Out): { [K in Key]: Out[] } & { next_cursor: string | null } {
  return { [key]: page.items.map(view), next_cursor: page.nextAfter === null ? null : encodeCursor(page.nextAfter) } as { [K in Key]: Out[] } & {
    next_cursor: string | null;
  };
}
