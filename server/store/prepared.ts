/**
 * Statements prepared once per database connection. drizzle builds the SQL of a query on every
 * call (entity checks, selection, SQL assembly) and better-sqlite3 prepares it again: more than
 * half of a `/boot.ipxe` under load. A hot store function instead asks `prepared` for its
 * statement, built with `sql.placeholder` the first time this connection asks.
 */
import type BetterSqlite3 from "better-sqlite3";
import type { Queryable } from "../../db/client.js";

const byConnection = new WeakMap<BetterSqlite3.Database, Map<unknown, unknown>>();

/** The better-sqlite3 connection under a database or a transaction (the same one: SQLite is one connection here). */
export function connectionOf(q: Queryable): BetterSqlite3.Database {
  const db = q as { $client?: BetterSqlite3.Database; session?: { client: BetterSqlite3.Database } };
  const client = db.$client ?? db.session?.client;
  if (!client) throw new Error("prepared: not a better-sqlite3 database or transaction");
  return client;
}

/** The statement `build` makes, prepared once per connection; `key` is the building function itself. */
export function prepared<T>(q: Queryable, build: (q: Queryable) => T): T {
  const client = connectionOf(q);
  let statements = byConnection.get(client);
  if (!statements) {
    statements = new Map();
    byConnection.set(client, statements);
  }
  let statement = statements.get(build) as T | undefined;
  if (statement === undefined) {
    statement = build(q);
    statements.set(build, statement);
  }
  return statement;
}
