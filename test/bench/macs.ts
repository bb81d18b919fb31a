/** The MACs the bench rotates through: 02:be:00:xx:yy:zz, locally administered. */

/** MAC number `i` (0-based). */
export function benchMac(i: number): string {
  const h = i.toString(16).padStart(6, "0");
  return `02:be:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/** How many MACs rotate in the HTTP loads. */
export const benchMacCount = 10_000;
