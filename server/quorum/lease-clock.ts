/**
 * The lease clock: quorum leases (how long a seat waits for `k3s-started`) are measured on it,
 * not on the wall clock. An edge box without an RTC often starts in 1970 or at its last shutdown
 * and then has NTP step its clock by months: measured on the wall clock, that step would take back
 * every unstarted seat at once (or, stepping back, freeze them). This clock starts at the wall
 * clock when edgejoin starts, never earlier than the newest lease start already stored (so a
 * clock that went back while edgejoin was down does not freeze those leases), and then advances
 * with the process's monotonic clock only. A step while edgejoin runs changes nothing; a jump
 * forward while it was stopped counts as time that passed. Pure.
 */

/** A clock that reads `anchor` now and then advances with `monotonic` (milliseconds). */
export function leaseClockFrom(anchor: number, monotonic: () => number = () => performance.now()): () => number {
  const started = monotonic();
  return () => anchor + Math.max(0, monotonic() - started);
}

/** Where the lease clock starts: the wall clock, unless a stored lease start is later. */
export function leaseClockAnchor(wallNow: number, newestLeaseStart: number | null): number {
  return newestLeaseStart !== null && newestLeaseStart > wallNow ? newestLeaseStart : wallNow;
}
