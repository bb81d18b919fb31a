/** Garbage, probes and misbehaving clients never crash the server or leak a socket. */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TftpServer } from "../../server/tftp/server.js";
import { tempDir } from "../helpers/temp-dir.js";
import { requireTools, run } from "../helpers/tools.js";
import { ack, boundUdpPorts, errorPacket, eventually, oackOptions, opcode, RawClient, rrq, startTestServer, type LogLine } from "./harness.js";

describe("TFTP robustness", () => {
  const tmp = tempDir("tftp-robust");
  const bootDir = join(tmp.dir, "boot");
  const file = randomBytes(50_000);
  let server: TftpServer;
  let port: number;
  let logs: LogLine[];

  beforeAll(async () => {
    mkdirSync(bootDir);
    writeFileSync(join(bootDir, "file.bin"), file);
    ({ server, port, logs } = await startTestServer(bootDir));
  });
  afterAll(async () => {
    await server?.close();
    tmp.remove();
  });

  async function curlStillWorks() {
    requireTools({ curl: "curl" });
    const r = await run("curl", ["-sS", "--max-time", "10", "--tftp-blksize", "1468", `tftp://127.0.0.1:${port}/file.bin`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(file)).toBe(true);
  }

  it("garbage on the listening port (empty, random, truncated RRQ, unknown opcode, ACK, DATA) → still serves", async () => {
    const client = await RawClient.open();
    try {
      const garbage = [
        Buffer.alloc(0),
        Buffer.from([1]),
        randomBytes(3),
        randomBytes(100),
        randomBytes(600),
        Buffer.from("\x00\x01file.bin", "latin1"), // RRQ without NULs, under 9 bytes
        Buffer.from("\x00\x01file.bin-and-no-terminator-at-all", "latin1"),
        Buffer.from("\x00\x01file.bin\x00", "latin1"), // no mode
        Buffer.from("\x00\x01file.bin\x00weird\x00", "latin1"), // unknown mode
        Buffer.from("\x00\x01file.bin\x00octet\x00blksize\x00", "latin1"), // option without value
        Buffer.from("\x00\x01file.bin\x00octet\x00blksize\x00abc\x00", "latin1"),
        Buffer.from("\x00\x01file.bin\x00octet\x00tsize\x00999\x00", "latin1"), // tsize must be 0 in an RRQ
        Buffer.from("\x00\x01\xff\xfe\x00octet\x00", "latin1"), // non-ASCII name
        Buffer.from("\x00\x09padding-padding\x00", "latin1"), // unknown opcode
        ack(1),
        Buffer.concat([Buffer.from([0, 3, 0, 1]), randomBytes(100)]), // DATA
        Buffer.concat([Buffer.from([0, 5, 0, 1]), Buffer.from("no\0")]), // ERROR
        Buffer.concat([Buffer.from([0, 6]), Buffer.from("blksize\x001468\x00")]), // OACK
      ];
      for (const packet of garbage) await client.send(port, packet);
      for (let i = 0; i < 200; i++) await client.send(port, randomBytes(1 + (i % 40)));
      // Drain the error answers so they do not pile up; how many came back does not matter.
      while (await client.next(200)) {
        // keep draining
      }
    } finally {
      client.close();
    }
    await curlStillWorks();
  });

  it("OVMF's size probe (tsize 0, blksize 1468, windowsize 4, then ERROR after the OACK) → OACK with tsize, transfer socket closed, debug log", async () => {
    const client = await RawClient.open();
    try {
      await client.send(port, rrq("file.bin", { tsize: "0", blksize: "1468", windowsize: "4" }));
      const reply = await client.next();
      expect(reply).toBeDefined();
      expect(opcode(reply!.message)).toBe(6);
      expect(oackOptions(reply!.message)).toMatchObject({ tsize: String(file.length), blksize: "1468", windowsize: "4" });
      const transferPort = reply!.rinfo.port;
      expect(transferPort).not.toBe(port);
      expect((await boundUdpPorts()).has(transferPort)).toBe(true);
      await client.send(transferPort, errorPacket(8, "User aborted the transfer"));
      expect(await eventually(async () => !(await boundUdpPorts()).has(transferPort))).toBe(true);
      expect(await eventually(() => logs.some((l) => l.level === 20 && l.msg === "TFTP client ended after option negotiation (size probe)"))).toBe(true);
      expect(logs.some((l) => l.level >= 40 && l.file === "file.bin")).toBe(false);
      // Then the real request, as OVMF sends it.
      await client.send(port, rrq("file.bin", { blksize: "1468", windowsize: "4" }));
      const received = await fetchWindowed(client, 1468, 4);
      expect(received.equals(file)).toBe(true);
    } finally {
      client.close();
    }
  });

  it("client vanishes after the OACK (never ACKs) → transfer socket closed after retries", async () => {
    const client = await RawClient.open();
    try {
      // timeout 1: the server retransmits every second, three times, then gives up.
      await client.send(port, rrq("file.bin", { tsize: "0", timeout: "1" }));
      const reply = await client.next();
      expect(opcode(reply!.message)).toBe(6);
      expect(oackOptions(reply!.message)).toMatchObject({ timeout: "1" });
      const transferPort = reply!.rinfo.port;
      expect(await eventually(async () => !(await boundUdpPorts()).has(transferPort), 8_000)).toBe(true);
    } finally {
      client.close();
    }
  });

  it.each([1, 2, 4])("duplicate ACKs (windowsize %i) and tiny packets at the transfer port → transfer completes, process alive", async (windowsize) => {
    const client = await RawClient.open();
    try {
      await client.send(port, rrq("file.bin", { blksize: "512", windowsize: String(windowsize) }));
      const oack = await client.next();
      expect(opcode(oack!.message)).toBe(6);
      const tport = oack!.rinfo.port;
      await client.send(tport, Buffer.alloc(0));
      await client.send(tport, Buffer.from([0]));
      await client.send(tport, ack(0));
      await client.send(tport, ack(0));
      await client.send(tport, ack(0));
      const received = await collect(client, tport, 512, windowsize, { duplicateEveryAck: true });
      expect(received.equals(file)).toBe(true);
    } finally {
      client.close();
    }
    await curlStillWorks();
  });

  it("a stranger's packets at the transfer port → ignored, the client's transfer completes", async () => {
    const client = await RawClient.open();
    const stranger = await RawClient.open();
    try {
      await client.send(port, rrq("file.bin", { blksize: "1468" }));
      const oack = await client.next();
      const tport = oack!.rinfo.port;
      await stranger.send(tport, errorPacket(0, "hijack"));
      await stranger.send(tport, ack(5));
      await client.send(tport, ack(0));
      const received = await collect(client, tport, 1468, 1);
      expect(received.equals(file)).toBe(true);
    } finally {
      client.close();
      stranger.close();
    }
  });

  it("close() with a transfer stuck mid-way → resolves, the transfer socket is closed", async () => {
    const local = tempDir("tftp-close");
    writeFileSync(join(local.dir, "f.bin"), file);
    const started = await startTestServer(local.dir);
    const client = await RawClient.open();
    try {
      await client.send(started.port, rrq("f.bin", { blksize: "512" }));
      const oack = await client.next();
      const tport = oack!.rinfo.port;
      await started.server.close();
      expect(await eventually(async () => !(await boundUdpPorts()).has(tport))).toBe(true);
      expect((await boundUdpPorts()).has(started.port)).toBe(false);
    } finally {
      client.close();
      local.remove();
    }
  });
});

/** ACK the OACK, then read DATA blocks, ACKing each window, until the short block. */
async function fetchWindowed(client: RawClient, blksize: number, windowsize: number): Promise<Buffer> {
  const oack = await client.next();
  expect(opcode(oack!.message)).toBe(6);
  const tport = oack!.rinfo.port;
  await client.send(tport, ack(0));
  return collect(client, tport, blksize, windowsize);
}

async function collect(client: RawClient, tport: number, blksize: number, windowsize: number, opts: { duplicateEveryAck?: boolean } = {}): Promise<Buffer> {
  const blocks: Buffer[] = [];
  let expected = 1;
  // Bounded: at most 1,000 packets and 2 s of silence.
  for (let i = 0; i < 1_000; i++) {
    const p = await client.next(2_000);
    if (!p) throw new Error(`no DATA after block ${expected - 1}`);
    if (opcode(p.message) !== 3) continue;
    const block = p.message.readUInt16BE(2);
    if (block !== expected) continue;
    const data = p.message.subarray(4);
    blocks.push(data);
    expected++;
    const last = data.length < blksize;
    if (last || block % windowsize === 0) {
      await client.send(tport, ack(block));
      if (opts.duplicateEveryAck) await client.send(tport, ack(block));
    }
    if (last) return Buffer.concat(blocks);
  }
  throw new Error("too many packets");
}
