/**
 * The lease clock (issue 9: leases ran on the wall clock, so an NTP step on an edge box without an
 * RTC took back every unstarted seat). It follows the monotonic clock from an anchor; the anchor
 * is the wall clock at start, never before the newest lease start already stored.
 */
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openDb } from "../../db/client.js";
import { makeDeps } from "../../server/app.js";
import { leaseClockAnchor, leaseClockFrom } from "../../server/quorum/lease-clock.js";
import { testCaCertPem, testConfig } from "../helpers/app.js";

const day = 86_400_000;

afterEach(() => {
  vi.useRealTimers();
});

describe("lease clock", () => {
  it("reads its anchor, then moves only with the monotonic clock, never backwards", () => {
    let mono = 5_000;
    const lease = leaseClockFrom(1_000_000, () => mono);
    expect(lease()).toBe(1_000_000);
    mono += 250;
    expect(lease()).toBe(1_000_250);
    mono -= 10_000;
    expect(lease()).toBe(1_000_000);
  });

  it("anchor: the wall clock, unless a stored lease started later (a clock that went back while edgejoin was stopped)", () => {
    expect(leaseClockAnchor(2_000, 1_000)).toBe(2_000);
    expect(leaseClockAnchor(2_000, null)).toBe(2_000);
    expect(leaseClockAnchor(1_000, 2_000)).toBe(2_000);
  });

  it("the server's own lease clock ignores the wall clock stepping a month either way while it runs", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.UTC(2026, 10, 25, 12, 0, 0));
    const deps = makeDeps({ db: openDb(":memory:"), config: testConfig(), logger: pino({ level: "silent" }), caCertPem: testCaCertPem });
    const before = deps.leaseClock();
    expect(before - Date.UTC(2026, 10, 25, 12, 0, 0)).toBeGreaterThanOrEqual(0);
    expect(before - Date.UTC(2026, 10, 25, 12, 0, 0)).toBeLessThan(5_000);
    vi.setSystemTime(Date.now() + 30 * day);
    expect(deps.leaseClock() - before).toBeLessThan(5_000);
    vi.setSystemTime(Date.now() - 60 * day);
    expect(deps.leaseClock()).toBeGreaterThanOrEqual(before);
    expect(deps.leaseClock() - before).toBeLessThan(5_000);
  });
});
