/**
 * Caps on concurrent TFTP transfers, overall and per client address: each transfer holds a UDP
 * socket (a file descriptor) until it ends or times out, so un-ACKed read requests must not pile
 * up. Firmware fetches one or two files at a time (OVMF: a size probe, then the file); a client that
 * reset mid-transfer leaves a few waiting for their retries to run out, hence 16 per address. Counted
 * from the moment a request is passed to the `tftp` package, which binds the transfer's socket
 * before it hands the request over.
 */

/** Transfers at once, in total and from one client address. */
export type TransferCapLimits = { total: number; perClient: number };

export const DEFAULT_TRANSFER_CAPS: TransferCapLimits = { total: 128, perClient: 16 };

/**
 * A request the package has not handed over within this long never will (it refused it with an
 * error packet itself): binding the transfer's socket takes well under a millisecond.
 */
const HANDOVER_MS = 250;

/** What is in flight, and whether one more request may start. */
export class TransferCaps {
  readonly #handingOver = new Map<string, number[]>();

  constructor(
    readonly limits: TransferCapLimits = DEFAULT_TRANSFER_CAPS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Admit a read request from `address` given the running transfers' client addresses; an admitted one counts at once. */
  admit(address: string, running: readonly string[]): { ok: boolean; total: number; fromClient: number } {
    const now = this.now();
    let pending = 0;
    for (const [a, times] of this.#handingOver) {
      const live = times.filter((t) => now - t < HANDOVER_MS);
      if (live.length === 0) this.#handingOver.delete(a);
      else this.#handingOver.set(a, live);
      pending += live.length;
    }
    const total = running.length + pending;
    const fromClient = running.filter((a) => a === address).length + (this.#handingOver.get(address)?.length ?? 0);
    const ok = total < this.limits.total && fromClient < this.limits.perClient;
    if (ok) this.#handingOver.set(address, [...(this.#handingOver.get(address) ?? []), now]);
    return { ok, total, fromClient };
  }

  /** The package handed a request from `address` over: it now counts as running. */
  handedOver(address: string): void {
    this.#handingOver.get(address)?.shift();
  }
}
