import { describe, expect, it } from "vitest";
import { decideSeat, expiredSeats, quorumHealth, seatAfterReinstall, type QuorumView, type SeatHolder } from "../../server/quorum/seats.js";

const holder = (id: number, role: SeatHolder["role"], over: Partial<SeatHolder> = {}): SeatHolder => ({
  id,
  role,
  state: "provisioning",
  roleAssignedAt: 1_000,
  k3sStartedAt: null,
  readyAt: null,
  ...over,
});
const ready = (id: number, role: SeatHolder["role"]) => holder(id, role, { state: "joined", k3sStartedAt: 2_000, readyAt: 3_000 });
const view = (desiredServers: number, holders: SeatHolder[], initStartedAt: number | null = null): QuorumView => ({ desiredServers, initStartedAt, holders });
const newcomer = { id: 99, role: null, preference: "auto" as const };

describe("decideSeat", () => {
  it("empty cluster → the first machine becomes the init server", () => {
    expect(decideSeat(view(3, []), newcomer)).toEqual({ kind: "release", role: "init", newSeat: true });
  });

  it("init not ready → the next server waits for it", () => {
    expect(decideSeat(view(3, [holder(1, "init")]), newcomer)).toEqual({ kind: "wait", reason: "waiting_for_init" });
  });

  it("init ready → one joining server; while it joins the next waits", () => {
    expect(decideSeat(view(3, [ready(1, "init")]), newcomer)).toEqual({ kind: "release", role: "server", newSeat: true });
    expect(decideSeat(view(3, [ready(1, "init"), holder(2, "server")]), newcomer)).toEqual({ kind: "wait", reason: "waiting_for_previous_server" });
    expect(decideSeat(view(3, [ready(1, "init"), ready(2, "server")]), newcomer)).toEqual({ kind: "release", role: "server", newSeat: true });
  });

  it("server seats full → agent once a server is ready", () => {
    expect(decideSeat(view(1, [ready(1, "init")]), newcomer)).toEqual({ kind: "release", role: "agent", newSeat: true });
    expect(decideSeat(view(3, [ready(1, "init"), ready(2, "server"), holder(3, "server")]), newcomer)).toEqual({
      kind: "release",
      role: "agent",
      newSeat: true,
    });
    expect(decideSeat(view(1, [holder(1, "init")]), newcomer)).toEqual({ kind: "wait", reason: "waiting_for_server" });
  });

  it("holder asks again → same role, no new seat", () => {
    expect(decideSeat(view(3, [ready(1, "init")]), { id: 1, role: "init", preference: "auto" })).toEqual({ kind: "release", role: "init", newSeat: false });
    expect(decideSeat(view(3, []), { id: 5, role: "agent", preference: "auto" })).toEqual({ kind: "release", role: "agent", newSeat: false });
  });

  it("init seat taken back after k3s ran (retired) → nobody becomes init again: with no server left, wait for an admin's re-form; else join the ready ones", () => {
    expect(decideSeat(view(3, [], 2_000), newcomer)).toEqual({ kind: "wait", reason: "waiting_for_reform" });
    expect(decideSeat(view(1, [], 2_000), { ...newcomer, preference: "agent" })).toEqual({ kind: "wait", reason: "waiting_for_reform" });
    expect(decideSeat(view(3, [ready(2, "server")], 2_000), newcomer)).toEqual({ kind: "release", role: "server", newSeat: true });
  });

  it("init seat taken back before k3s ran → the next machine becomes init", () => {
    expect(decideSeat(view(3, [], null), newcomer)).toEqual({ kind: "release", role: "init", newSeat: true });
  });

  it("preference agent → agent, never a server, even in an empty cluster", () => {
    const asker = { id: 9, role: null, preference: "agent" as const };
    expect(decideSeat(view(3, []), asker)).toEqual({ kind: "wait", reason: "waiting_for_server" });
    expect(decideSeat(view(3, [ready(1, "init")]), asker)).toEqual({ kind: "release", role: "agent", newSeat: true });
  });

  it("preference server with seats full → agent", () => {
    expect(decideSeat(view(1, [ready(1, "init")]), { id: 9, role: null, preference: "server" })).toMatchObject({ role: "agent" });
  });

  it("a machine approved as server is waiting → an auto machine leaves it the free seat", () => {
    expect(decideSeat(view(3, [ready(1, "init")]), newcomer, { serverPreferredWaiting: true })).toEqual({ kind: "wait", reason: "waiting_for_role" });
    expect(decideSeat(view(3, [ready(1, "init")]), { id: 9, role: null, preference: "server" }, { serverPreferredWaiting: true })).toMatchObject({
      role: "server",
    });
  });
});

describe("expiredSeats", () => {
  it("no k3s-started within the lease → taken back; started or within lease → kept", () => {
    const lease = 20 * 60_000;
    const holders = [
      holder(1, "init", { roleAssignedAt: 0 }),
      holder(2, "server", { roleAssignedAt: 0, k3sStartedAt: 5 }),
      holder(3, "agent", { roleAssignedAt: 10 }),
    ];
    expect(expiredSeats(holders, lease, lease).map((h) => h.id)).toEqual([1]);
    expect(expiredSeats(holders, lease - 1, lease)).toEqual([]);
  });
});

describe("quorumHealth", () => {
  it("all desired ready → ok; never formed → forming; after → degraded with a majority, lost without", () => {
    expect(quorumHealth(view(3, [ready(1, "init"), ready(2, "server"), ready(3, "server")]), null)).toBe("ok");
    expect(quorumHealth(view(3, [ready(1, "init")]), null)).toBe("forming");
    expect(quorumHealth(view(3, [ready(1, "init"), ready(2, "server"), holder(3, "server", { state: "failed" })]), 5)).toBe("degraded");
    expect(quorumHealth(view(3, [ready(1, "init"), holder(3, "server", { state: "failed" })]), 5)).toBe("lost");
    expect(quorumHealth(view(1, [ready(1, "init"), ready(4, "agent")]), null)).toBe("ok");
  });
});

describe("seatAfterReinstall", () => {
  const server = (id: number, role: "init" | "server", k3sStartedAt: number | null) => ({ id, role, k3sStartedAt });
  it("agents keep theirs; a server that never ran k3s frees its seat; an etcd member keeps it while another member remains, else frees it", () => {
    expect(seatAfterReinstall({ id: 1, role: null, k3sStartedAt: null }, [])).toBe("none");
    expect(seatAfterReinstall({ id: 9, role: "agent", k3sStartedAt: 5 }, [])).toBe("keep");
    expect(seatAfterReinstall(server(1, "init", null), [server(1, "init", null)])).toBe("free");
    expect(seatAfterReinstall(server(1, "init", 5), [server(1, "init", 5), server(2, "server", 6)])).toBe("keep");
    expect(seatAfterReinstall(server(1, "init", 5), [server(1, "init", 5)])).toBe("free");
    expect(seatAfterReinstall(server(2, "server", 6), [server(1, "init", 5), server(2, "server", 6)])).toBe("keep");
  });
});
