/**
 * The syslog receiver over real UDP on loopback: lines from 127.0.0.2 land under the machine last
 * seen there, lines from unknown addresses and garbage are counted and dropped, a flood from one
 * source is cut at the per-second limit, and the receiver keeps going.
 */
import { createSocket, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { openDb } from "../../db/client.js";
import { recordSighting } from "../../server/store/machines.js";
import { fileSyslog, listSyslog } from "../../server/store/syslog.js";
import { MAX_LINES_PER_SOURCE_PER_SECOND, startSyslogReceiver, type SyslogReceiver } from "../../server/syslog/server.js";
import { freeUdpPort } from "../helpers/ports.js";

const silent = { debug() {}, warn() {}, error() {} };
const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function sender(address: string): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, address, () => resolve()));
  opened.push({ close: () => new Promise<void>((r) => s.close(() => r())) });
  return s;
}

const send = (s: Socket, text: string | Buffer, port: number) =>
  new Promise<void>((resolve, reject) => s.send(text, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));

async function until(cond: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function start(now: () => number = Date.now) {
  const db = openDb(":memory:");
  const m = recordSighting(db, { mac: "52:54:00:aa:bb:01" }, { ip: "127.0.0.2", now: 1000, via: "boot" }).machine;
  const receiver: SyslogReceiver = await startSyslogReceiver({
    host: "127.0.0.1",
    port: await freeUdpPort(),
    file: (sourceIp, line) => fileSyslog(db, { sourceIp, line, now: 5000 }) !== undefined,
    logger: silent,
    now,
  });
  opened.push(receiver);
  return { db, m, receiver };
}

describe("syslog receiver over real UDP", () => {
  it("RFC 3164 and 5424 lines from the machine's address → filed under it; others counted, not stored", async () => {
    const { db, m, receiver } = await start();
    const fromMachine = await sender("127.0.0.2");
    const stranger = await sender("127.0.0.1");
    await send(fromMachine, "<14>ipxe: Configuring (net0 52:54:00:aa:bb:01)...", receiver.port);
    await send(fromMachine, "<13>1 2026-11-30T10:00:00Z node-1 edgejoin-agent 77 - - enrolled as node 1", receiver.port);
    await send(stranger, "<14>ipxe: not a known machine", receiver.port);
    await send(fromMachine, "no pri at all", receiver.port);
    await send(fromMachine, Buffer.alloc(5000, 0x41), receiver.port);
    await until(() => receiver.stats().received === 5);
    expect(receiver.stats()).toEqual({ received: 5, filed: 2, unmatched: 1, malformed: 2, limited: 0, failed: 0 });
    expect(listSyslog(db, m.id, { limit: 10 }).items.map((r) => [r.app, r.message])).toEqual([
      ["ipxe", "Configuring (net0 52:54:00:aa:bb:01)..."],
      ["edgejoin-agent", "enrolled as node 1"],
    ]);
  });

  it("a flood from one source within one second → cut at the limit, the rest counted as limited", async () => {
    const { receiver } = await start(() => 42_000);
    const flood = await sender("127.0.0.2");
    const total = MAX_LINES_PER_SOURCE_PER_SECOND + 50;
    for (let i = 0; i < total; i++) await send(flood, `<14>app: line ${i}`, receiver.port);
    await until(() => receiver.stats().received === total);
    expect(receiver.stats()).toMatchObject({ filed: MAX_LINES_PER_SOURCE_PER_SECOND, limited: 50 });
  });
});
