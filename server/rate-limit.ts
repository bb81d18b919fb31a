/**
 * Bounds on what unauthenticated clients can make edgejoin store: new machines first seen, and
 * audit records of refused requests. Token buckets per source address, per machine and in total,
 * on a monotonic clock (a wall-clock step neither opens nor closes a bucket). In memory: a restart
 * refills them, which costs at most one burst. Pure: no framework, no SQL.
 */

/** A token bucket's shape: a burst of `burst`, refilled at `perMinute`. */
export type BucketRule = { burst: number; perMinute: number };

/** One rule applied per key (source address, machine id), with a bounded number of keys. */
export class KeyedBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rule: BucketRule,
    private readonly now: () => number,
    /** Keys remembered at most; the least recently used go first (a forgotten key starts full). */
    private readonly maxKeys = 10_000,
  ) {}

  /** Take one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    const b = this.#buckets.get(key) ?? { tokens: this.rule.burst, at: now };
    this.#buckets.delete(key);
    b.tokens = Math.min(this.rule.burst, b.tokens + (Math.max(0, now - b.at) * this.rule.perMinute) / 60_000);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    return ok;
  }

  /** Whether `key` has a token, without taking it. */
  peek(key: string): boolean {
    const b = this.#buckets.get(key);
    if (!b) return this.rule.burst >= 1;
    return Math.min(this.rule.burst, b.tokens + (Math.max(0, this.now() - b.at) * this.rule.perMinute) / 60_000) >= 1;
  }
}

/** The numbers, overridable by tests. */
export type AnonymousLimitRules = {
  /** New MACs first seen, per source address and in total. */
  newMachinesPerSource: BucketRule;
  newMachinesTotal: BucketRule;
  /** Audit records of refused anonymous requests (enroll refusals, conflicts, disagreeing sightings). */
  refusalAuditsPerSource: BucketRule;
  refusalAuditsPerMachine: BucketRule;
  refusalAuditsTotal: BucketRule;
};

/**
 * A boot storm of a few hundred machines fits in the bursts; a neighbour inventing MACs gets a
 * few hundred in, then one a second from its address, a few a second from all addresses together.
 */
export const defaultAnonymousLimits: AnonymousLimitRules = {
  newMachinesPerSource: { burst: 600, perMinute: 60 },
  newMachinesTotal: { burst: 2_000, perMinute: 600 },
  refusalAuditsPerSource: { burst: 60, perMinute: 10 },
  refusalAuditsPerMachine: { burst: 20, perMinute: 2 },
  refusalAuditsTotal: { burst: 600, perMinute: 120 },
};

/** What anonymous clients may still make edgejoin store now. */
export class AnonymousLimits {
  readonly #newPerSource: KeyedBuckets;
  readonly #newTotal: KeyedBuckets;
  readonly #auditPerSource: KeyedBuckets;
  readonly #auditPerMachine: KeyedBuckets;
  readonly #auditTotal: KeyedBuckets;
  /** Refusals not audited because a bound was reached, and new machines refused, since start. */
  readonly dropped = { audits: 0, newMachines: 0 };

  constructor(rules: Partial<AnonymousLimitRules> = {}, now: () => number = () => performance.now()) {
    const r = { ...defaultAnonymousLimits, ...rules };
    this.#newPerSource = new KeyedBuckets(r.newMachinesPerSource, now);
    this.#newTotal = new KeyedBuckets(r.newMachinesTotal, now);
    this.#auditPerSource = new KeyedBuckets(r.refusalAuditsPerSource, now);
    this.#auditPerMachine = new KeyedBuckets(r.refusalAuditsPerMachine, now);
    this.#auditTotal = new KeyedBuckets(r.refusalAuditsTotal, now);
  }

  /** May a machine never seen before be recorded for a request from `sourceIp`? */
  mayCreateMachine(sourceIp: string): boolean {
    // Both must have room; the per-source bucket is checked first so one address cannot drain the total.
    const ok = this.#newPerSource.peek(sourceIp) && this.#newTotal.peek("all") && this.#newPerSource.take(sourceIp) && this.#newTotal.take("all");
    if (!ok) this.dropped.newMachines++;
    return ok;
  }

  /** May a refusal from `sourceIp` about `machineId` (null: no known machine) be audited? */
  mayAuditRefusal(sourceIp: string, machineId: number | null): boolean {
    const ok =
      this.#auditPerSource.peek(sourceIp) &&
      (machineId === null || this.#auditPerMachine.peek(String(machineId))) &&
      this.#auditTotal.peek("all") &&
      this.#auditPerSource.take(sourceIp) &&
      (machineId === null || this.#auditPerMachine.take(String(machineId))) &&
      this.#auditTotal.take("all");
    if (!ok) this.dropped.audits++;
    return ok;
  }
}
