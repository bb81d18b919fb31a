/**
 * Writes that may trail the request that caused them: a machine's timeline activity and the
 * refresh of what a known machine last reported. A boot storm sends every machine's requests in
 * the same second; committing each of these alone was most of a `/boot.ipxe` (a write transaction
 * per request, twice). Queued here, they are applied together in one transaction at most
 * `flushEveryMs` later (or once 2,000 are queued), before any request that reads them
 * (createApp calls `flushDeferred` first for every route but the machines' boot and seed
 * fetches), and at shutdown.
 *
 * What is never deferred: anything that decides (enrollment, approval, quorum seats, a new
 * machine, an audit record). A SIGKILL loses at most the queued timeline lines and last-seen
 * times of the requests answered in the last 50 ms, never a decision.
 */
import type { Db, Tx } from "../../db/client.js";
import { transact } from "./transaction.js";

type Queue = { writes: Map<string | symbol, (tx: Tx) => void>; scheduled: boolean };
const queues = new WeakMap<Db, Queue>();

/** Most writes queued before the queue is applied at once instead of on its timer. */
const maxQueued = 2000;
/** How long a queued write may wait: what a SIGKILL can lose, at most, of timeline lines and last-seen times. */
const flushEveryMs = 50;

/**
 * Queue `write` for the next flush. A `key` makes it replace a queued write with the same key
 * (the latest sighting of a machine is the only one worth writing); without one it is appended.
 */
export function deferWrite(db: Db, write: (tx: Tx) => void, key?: string): void {
  let q = queues.get(db);
  if (!q) {
    q = { writes: new Map(), scheduled: false };
    queues.set(db, q);
  }
  q.writes.set(key ?? Symbol(), write);
  if (q.writes.size >= maxQueued) {
    try {
      flushDeferred(db);
    } catch {
      // As on the timer: the request that queued the last one still gets its answer.
    }
    return;
  }
  if (!q.scheduled) {
    q.scheduled = true;
    // A commit per event-loop turn still cost more than the requests it carried under a storm:
    // one per `flushEveryMs` carries hundreds. Unref'd: a pending flush never holds the process up.
    setTimeout(() => {
      q.scheduled = false;
      try {
        flushDeferred(db);
      } catch {
        // A closed or busy database loses these lines; the requests that made them were answered.
      }
    }, flushEveryMs).unref();
  }
}

/** Apply every queued write now, in one transaction (nothing to do when none is queued). */
export function flushDeferred(db: Db): void {
  const q = queues.get(db);
  if (!q || q.writes.size === 0) return;
  const writes = [...q.writes.values()];
  q.writes.clear();
  transact(db, (tx) => {
    for (const write of writes) {
      try {
        write(tx);
      } catch {
        // One line that cannot be written (a machine deleted since) must not cost the others theirs.
      }
    }
  });
}
