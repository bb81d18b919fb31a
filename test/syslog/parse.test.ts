/** Syslog datagrams as iPXE, busybox, util-linux `logger` and rsyslog send them → fields; garbage → undefined. */
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_CHARS, parseSyslog } from "../../server/syslog/parse.js";

const p = (s: string | Buffer) => parseSyslog(typeof s === "string" ? Buffer.from(s) : s);

describe("syslog parser", () => {
  it("RFC 5424 (logger --rfc5424, rsyslog) with structured data → every field", () => {
    expect(p('<13>1 2026-11-30T10:00:00.123Z node-1 edgejoin-agent 812 - [timeQuality tzKnown="1" isSynced="0"] enrolled as node 4')).toEqual({
      facility: 1,
      severity: 5,
      timestamp: "2026-11-30T10:00:00.123Z",
      hostname: "node-1",
      app: "edgejoin-agent",
      message: "enrolled as node 4",
    });
  });

  it("RFC 5424 with nil fields, a BOM and an escaped ] inside structured data", () => {
    expect(p('<165>1 - - - - ID47 [ex a="x\\]y"] \uFEFFcurtin: install done')).toEqual({
      facility: 20,
      severity: 5,
      timestamp: null,
      hostname: null,
      app: null,
      message: "curtin: install done",
    });
  });

  it("RFC 3164 with timestamp, host and tag[pid] → fields", () => {
    expect(p("<30>Nov 30 10:00:01 ubuntu-server subiquity[1234]: running curtin install")).toEqual({
      facility: 3,
      severity: 6,
      timestamp: "Nov 30 10:00:01",
      hostname: "ubuntu-server",
      app: "subiquity",
      message: "running curtin install",
    });
  });

  it("busybox style (timestamp, no host) and iPXE style (no timestamp, optional host) → app and message", () => {
    expect(p("<14>Nov  3 09:08:07 udhcpc: lease obtained")).toMatchObject({
      timestamp: "Nov  3 09:08:07",
      hostname: null,
      app: "udhcpc",
      message: "lease obtained",
    });
    expect(p("<14>ipxe: Could not boot: No such file")).toMatchObject({ hostname: null, app: "ipxe", message: "Could not boot: No such file" });
    expect(p("<14>nuc-7 ipxe: http://10.0.0.5:8080/boot.ipxe... ok")).toMatchObject({
      hostname: "nuc-7",
      app: "ipxe",
      message: "http://10.0.0.5:8080/boot.ipxe... ok",
    });
  });

  it("control characters and newlines become spaces; long messages are cut", () => {
    expect(p("<14>app: a\nb\u0007c\u001b[31m")?.message).toBe("a b c [31m");
    const long = p(`<14>app: ${"x".repeat(1900)}`)!;
    expect(long.message.length).toBe(MAX_MESSAGE_CHARS + 1);
  });

  it("no PRI, a PRI over 191, empty, oversized or binary garbage → not syslog", () => {
    expect(p("hello")).toBeUndefined();
    expect(p("<192>x")).toBeUndefined();
    expect(p("<1a>x")).toBeUndefined();
    expect(p(Buffer.alloc(0))).toBeUndefined();
    expect(p(`<14>${"x".repeat(3000)}`)).toBeUndefined();
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      const b = Buffer.alloc(n % 300);
      for (let k = 0; k < b.length; k++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        b[k] = seed & 0xff;
      }
      if (n % 3 === 0) Buffer.from("<34>").copy(b);
      expect(() => parseSyslog(b)).not.toThrow();
    }
  });
});
