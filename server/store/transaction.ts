/**
 * The store's one refusal convention. Every decision runs in one `BEGIN IMMEDIATE` transaction
 * (the write lock is taken before the first read, so two requests can never both see the same
 * free seat, in this process or another on the same file). A rule that says "no" returns a
 * `Refusal` instead of throwing, so what was written before it (an audit record, a revoked seat,
 * a split-brain flag) commits; `transact` then throws it as an `ApiError`.
 */
import type BetterSqlite3 from "better-sqlite3";
import type { Db, Tx } from "../../db/client.js";
import { Refusal } from "../errors.js";

/** One better-sqlite3 transaction function and one drizzle transaction object per database. */
type Runner = { run: BetterSqlite3.Transaction<(fn: (tx: Tx) => unknown, tx: Tx) => unknown>; tx: Tx };
const runners = new WeakMap<Db, Runner>();

/**
 * drizzle's `db.transaction` builds a transaction object and a better-sqlite3 transaction wrapper
 * on every call (a few percent of a `/boot.ipxe` under load). Both are made once per database:
 * the drizzle one taken from an empty transaction (it only carries the session, the same
 * connection), the native one running whatever function it is given.
 */
function runnerOf(db: Db): Runner {
  let runner = runners.get(db);
  if (!runner) {
    let captured: Tx | undefined;
    db.transaction((tx) => {
      captured = tx;
    });
    runner = { run: db.$client.transaction((fn: (tx: Tx) => unknown, tx: Tx) => fn(tx)), tx: captured! };
    runners.set(db, runner);
  }
  return runner;
}

/** Run `fn` in one immediate transaction; a returned Refusal is thrown after the commit. */
export function transact<T>(db: Db, fn: (tx: Tx) => T | Refusal): T {
  const { run, tx } = runnerOf(db);
  const out = run.immediate(fn, tx) as T | Refusal;
  if (out instanceof Refusal) throw out.toError();
  return out;
}
