/**
 * The store's one refusal convention. Every decision runs in one `BEGIN IMMEDIATE` transaction
 * (the write lock is taken before the first read, so two requests can never both see the same
 * free seat, in this process or another on the same file). A rule that says "no" returns a
 * `Refusal` instead of throwing, so what was written before it (an audit record, a revoked seat,
 * a split-brain flag) commits; `transact` then throws it as an `ApiError`.
 */
import type { Db, Tx } from "../../db/client.js";
import { Refusal } from "../errors.js";

/** Run `fn` in one immediate transaction; a returned Refusal is thrown after the commit. */
export function transact<T>(db: Db, fn: (tx: Tx) => T | Refusal): T {
  const out = db.transaction(fn, { behavior: "immediate" });
  if (out instanceof Refusal) throw out.toError();
  return out;
}
