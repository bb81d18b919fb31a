/**
 * Syslog over UDP, both dialects booting machines speak: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP
 * PROCID MSGID SD MSG`, rsyslog and util-linux `logger --rfc5424`) and RFC 3164 (`<PRI>Mmm dd
 * hh:mm:ss HOST TAG: MSG`, busybox and iPXE, which sends `<PRI>ipxe: MSG` with no timestamp or
 * host). Small enough to write here; the npm parsers are either unmaintained (`glossy`) or pull
 * a socket server with them. Lenient by design: anything with a valid `<PRI>` is kept.
 */

/** Largest datagram accepted: RFC 5426 requires receivers to take 480 bytes and SHOULD take 2048. */
export const MAX_SYSLOG_BYTES = 2048;
/** Longest message text stored; the rest is cut (a kernel oops line can be long, a log store must not be). */
export const MAX_MESSAGE_CHARS = 1024;

/** One parsed message; fields a sender left out are null. */
export type SyslogMessage = {
  facility: number;
  severity: number;
  /** The sender's own timestamp as sent (not trusted as a clock: a booting machine's is often 1970). */
  timestamp: string | null;
  hostname: string | null;
  app: string | null;
  message: string;
};

const NIL = "-";
const month = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const rfc3164Stamp = new RegExp(`^(${month} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d) `);

/** Control characters other than tab become spaces: a message is shown in a terminal and JSON. */
function clean(text: string): string {
  const flat = text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, " ").trimEnd();
  return flat.length > MAX_MESSAGE_CHARS ? `${flat.slice(0, MAX_MESSAGE_CHARS)}…` : flat;
}

const field = (v: string | undefined): string | null => (v === undefined || v === NIL ? null : v.slice(0, 255));

/** Structured data of RFC 5424: `-` or one or more `[id k="v" ...]` (values may hold escaped `]`). */
function skipStructuredData(rest: string): string | undefined {
  if (rest.startsWith("- ") || rest === NIL) return rest.slice(2);
  let i = 0;
  while (rest[i] === "[") {
    i++;
    let quoted = false;
    for (; i < rest.length; i++) {
      const ch = rest[i];
      if (ch === "\\" && quoted) i++;
      else if (ch === '"') quoted = !quoted;
      else if (ch === "]" && !quoted) break;
    }
    if (i >= rest.length) return undefined;
    i++;
  }
  if (i === 0) return undefined;
  return rest.slice(i).replace(/^ /, "");
}

/** Parse one datagram; undefined when it is not syslog (no valid `<PRI>`) or not text. */
export function parseSyslog(datagram: Buffer): SyslogMessage | undefined {
  if (datagram.length === 0 || datagram.length > MAX_SYSLOG_BYTES) return undefined;
  // RFC 5424 MSG may start with a UTF-8 BOM; invalid UTF-8 becomes U+FFFD rather than an error.
  const text = datagram.toString("utf8").replace(/^\uFEFF/, "");
  const pri = /^<(\d{1,3})>/.exec(text);
  if (!pri) return undefined;
  const value = Number(pri[1]);
  if (value > 191) return undefined;
  const facility = value >> 3;
  const severity = value & 7;
  const body = text.slice(pri[0].length);

  const v5424 = /^1 (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$/s.exec(body);
  if (v5424) {
    const rest = skipStructuredData(v5424[6]!);
    if (rest !== undefined) {
      return {
        facility,
        severity,
        timestamp: field(v5424[1]),
        hostname: field(v5424[2]),
        app: field(v5424[3]),
        message: clean(rest.replace(/^\uFEFF/, "")),
      };
    }
  }

  let rest = body;
  let timestamp: string | null = null;
  let hostname: string | null = null;
  const stamp = rfc3164Stamp.exec(rest);
  if (stamp) {
    timestamp = stamp[1]!;
    rest = rest.slice(stamp[0].length);
    // After a timestamp comes the host, unless the next word is already the tag (`app:` or `app[pid]:`; busybox leaves the host out).
    const host = /^(?!\S*:(?: |$))([^\s[\]]+) /.exec(rest);
    if (host) {
      hostname = host[1]!.slice(0, 255);
      rest = rest.slice(host[0].length);
    }
  }
  // iPXE sends `<PRI>HOST ipxe: MSG` once it has a hostname: a host with no timestamp before it.
  const bareHost = stamp ? null : /^([^\s:[\]]+) (?=[A-Za-z0-9_./-]{1,48}(?:\[\d{1,10}\])?: )/.exec(rest);
  if (bareHost) {
    hostname = bareHost[1]!.slice(0, 255);
    rest = rest.slice(bareHost[0].length);
  }
  const tag = /^([A-Za-z0-9_./-]{1,48})(?:\[\d{1,10}\])?: ?/.exec(rest);
  const app = tag ? tag[1]! : null;
  if (tag) rest = rest.slice(tag[0].length);
  return { facility, severity, timestamp, hostname, app, message: clean(rest) };
}
