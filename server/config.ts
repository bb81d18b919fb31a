/**
 * Settings: parsed once from the environment (and optionally a JSON config file), validated,
 * typed from the schema. A bad value stops start with one line naming the setting and the fix.
 */
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { readFileSync } from "node:fs";
import { z } from "zod";

const msPer = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Longest duration any setting takes: ten years, so every value stays an exact JavaScript number. */
const MAX_DURATION_MS = 3_650 * msPer.d;

/**
 * "90s", "20m", "24h", "7d" (also "500ms") → milliseconds. A bare number is refused: "24" could
 * mean seconds or hours. `min` is the shortest value that works and why.
 */
const duration = (name: string, example: string, min: { text: string; ms: number; why: string }) =>
  z.string().transform((v, ctx) => {
    const refuse = (message: string) => {
      ctx.issues.push({ code: "custom", message, input: v });
      return z.NEVER;
    };
    const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(v);
    if (!m) {
      return refuse(
        /^\d+$/.test(v)
          ? `${name} needs a unit: write e.g. ${example} (units: ms, s, m, h, d)`
          : `${name} must be a duration such as ${example} (a number and one of ms, s, m, h, d)`,
      );
    }
    const ms = Number(m[1]) * msPer[m[2] as keyof typeof msPer];
    if (ms < min.ms) return refuse(`${name} must be at least ${min.text}: ${min.why}`);
    if (ms > MAX_DURATION_MS) return refuse(`${name} must be at most 3650d`);
    return ms;
  });

const port = (name: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `${name} must be a port number 1-65535`)
    .transform(Number)
    .refine((p) => p >= 1 && p <= 65_535, `${name} must be a port number 1-65535`);

const onOff = (name: string) => z.enum(["on", "off"], { error: `${name} must be "on" or "off"` }).transform((v) => v === "on");

const httpUrl = (name: string) =>
  z
    .string()
    .refine((v) => {
      try {
        const u = new URL(v);
        // iPXE (Debian's build) cannot fetch https://, and machines chain to this URL from iPXE.
        return u.protocol === "http:" && u.search === "" && u.hash === "" && u.username === "";
      } catch {
        return false;
      }
    }, `${name} must be a plain http:// URL without query or credentials, e.g. http://10.0.0.5:8080 (iPXE cannot fetch https)`)
    .transform((v) => v.replace(/\/+$/, ""));

const envSchema = z.object({
  EDGEJOIN_PUBLIC_URL: httpUrl("EDGEJOIN_PUBLIC_URL").optional(),
  EDGEJOIN_HTTP_HOST: z.string().min(1).default("0.0.0.0"),
  EDGEJOIN_HTTP_PORT: port("EDGEJOIN_HTTP_PORT").default(8080),
  // The node API (enroll, config, events) answers only here; its certificate is edgejoin's own CA's.
  EDGEJOIN_HTTPS_HOST: z.string().min(1).optional(),
  EDGEJOIN_HTTPS_PORT: port("EDGEJOIN_HTTPS_PORT").default(8443),
  // The tftp package binds only a literal address (a name throws deep inside it).
  EDGEJOIN_TFTP_HOST: z
    .string()
    .refine((v) => isIP(v) !== 0, "EDGEJOIN_TFTP_HOST must be an IP address of this host, or 0.0.0.0 for all")
    .default("0.0.0.0"),
  EDGEJOIN_TFTP_PORT: port("EDGEJOIN_TFTP_PORT").default(69),
  EDGEJOIN_DATA_DIR: z.string().min(1).default("./data"),
  EDGEJOIN_BOOT_DIR: z.string().min(1).default("./boot"),
  /** Where Debian's `ipxe` package puts its binaries; used for any the boot folder lacks. */
  EDGEJOIN_IPXE_DIR: z.string().min(1).default("/usr/lib/ipxe"),
  EDGEJOIN_ARTIFACTS_DIR: z.string().min(1).optional(),
  EDGEJOIN_TEMPLATES_DIR: z.string().min(1).optional(),
  EDGEJOIN_ADMIN_TOKEN: z.string().min(24, "EDGEJOIN_ADMIN_TOKEN must be at least 24 characters; generate one with `openssl rand -hex 32`").optional(),
  EDGEJOIN_PROXY_DHCP: onOff("EDGEJOIN_PROXY_DHCP").default(false),
  /** Interfaces whose subnets ProxyDHCP answers (comma-separated names); unset = every non-loopback IPv4 one. */
  EDGEJOIN_PROXY_DHCP_INTERFACES: z
    .string()
    .regex(/^[A-Za-z0-9_.:@-]+(,[A-Za-z0-9_.:@-]+)*$/, "EDGEJOIN_PROXY_DHCP_INTERFACES must be interface names separated by commas, e.g. eth0,br-site")
    .transform((v) => v.split(","))
    .optional(),
  /** The iPXE binary x86-64 UEFI machines get: snponly.efi uses the firmware's NIC driver, ipxe.efi its own. */
  EDGEJOIN_IPXE_EFI: z.enum(["snponly.efi", "ipxe.efi"], { error: "EDGEJOIN_IPXE_EFI must be snponly.efi or ipxe.efi" }).default("snponly.efi"),
  EDGEJOIN_SYSLOG_PORT: port("EDGEJOIN_SYSLOG_PORT").optional(),
  // Issued when the installer fetches user-data, spent when the installed system first boots and
  // the agent enrolls: a whole OS install lies between, and an Ubuntu autoinstall from a slow
  // mirror takes tens of minutes. An expired token stops the agent for good (reinstall needed).
  EDGEJOIN_TOKEN_TTL: duration("EDGEJOIN_TOKEN_TTL", "24h", {
    text: "1h",
    ms: msPer.h,
    why: "a bootstrap token must outlive a whole OS install",
  }).default(24 * msPer.h),
  // The agent holds it from enrolling until its machine joined: that includes waiting for an
  // admin's approval (a long weekend) and for its turn in the quorum. An expired one stops the
  // agent for good.
  EDGEJOIN_CREDENTIAL_TTL: duration("EDGEJOIN_CREDENTIAL_TTL", "365d", {
    text: "7d",
    ms: 7 * msPer.d,
    why: "a node credential must outlive the wait for an admin's approval",
  }).default(365 * msPer.d),
  // Runs from the config's release to `k3s-started`: downloading k3s (about 70 MB) and its
  // install script, installing, and a joining server's first etcd sync. Shorter takes seats
  // back from healthy machines that are merely slow, and hands them on again and again.
  EDGEJOIN_ROLE_LEASE: duration("EDGEJOIN_ROLE_LEASE", "20m", {
    text: "5m",
    ms: 5 * msPer.m,
    why: "a machine needs minutes to download, install and start k3s",
  }).default(20 * msPer.m),
  EDGEJOIN_LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
      error: "EDGEJOIN_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent",
    })
    .default("info"),
  /** k3s version given to the default cluster made at first start. */
  EDGEJOIN_K3S_VERSION: z
    .string()
    .regex(/^v\d+\.\d+\.\d+\+k3s\d+$/, "EDGEJOIN_K3S_VERSION must look like v1.31.4+k3s1")
    .default("v1.31.4+k3s1"),
});

/** Every server setting's name, as the environment and the config file spell it. */
export const settingNames: readonly string[] = Object.keys(envSchema.shape);

/**
 * EDGEJOIN_* names that are not server settings but must not stop a start: the config file's
 * name (read here) and the admin CLI's server address (a shell that runs `edgejoin keys rotate`
 * may also start the server).
 */
const otherNames = ["EDGEJOIN_CONFIG", "EDGEJOIN_URL"];

/** Levenshtein distance: insertions, deletions and substitutions each cost 1. */
function editDistance(a: string, b: string): number {
  let above = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    above = row;
  }
  return above[b.length]!;
}

/** The setting an unknown name most likely meant, if any is close: a typo, a swapped pair, a suffix too many. */
export function closestSetting(unknown: string): string | undefined {
  const tail = (name: string) => name.toUpperCase().replace(/^EDGEJOIN_/, "");
  const wanted = tail(unknown);
  let best: { name: string; distance: number } | undefined;
  for (const name of settingNames) {
    const candidate = tail(name);
    // A name that only adds or drops words (EDGEJOIN_ROLE_LEASE_TIME, EDGEJOIN_PORT) is a close one.
    const [shorter, longer] = wanted.length < candidate.length ? [wanted, candidate] : [candidate, wanted];
    const distance = shorter.length >= 4 && longer.includes(shorter) ? 1 : editDistance(wanted, candidate);
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(2, Math.ceil(wanted.length / 4)) ? best.name : undefined;
}

/** One refusal per unknown name, e.g. `EDGEJOIN_HTTP_PROT (did you mean EDGEJOIN_HTTP_PORT?)`. */
function describeUnknown(names: string[]): string {
  return names
    .map((n) => {
      if (n.startsWith("EDGEJOIN_AGENT_")) return `${n} (the node agent's, read on the machines, not by the server)`;
      const near = closestSetting(n);
      return near ? `${n} (did you mean ${near}?)` : n;
    })
    .join(", ");
}

/** The artifacts folder: EDGEJOIN_ARTIFACTS_DIR, else `artifacts` in the data folder (`edgejoin artifacts fetch` writes there too). */
export function artifactsDirOf(env: { EDGEJOIN_ARTIFACTS_DIR?: string | undefined; EDGEJOIN_DATA_DIR?: string | undefined }): string {
  return env.EDGEJOIN_ARTIFACTS_DIR || `${env.EDGEJOIN_DATA_DIR || "./data"}/artifacts`;
}

/** Settings after parsing: the only shape the rest of edgejoin sees. */
export type Config = {
  publicUrl: string;
  /** True when publicUrl was guessed from the host's first non-loopback address. */
  publicUrlDerived: boolean;
  httpHost: string;
  httpPort: number;
  /** HTTPS listener of the node API; its host defaults to httpHost. */
  httpsHost: string;
  httpsPort: number;
  /**
   * The `https://` base the agent talks to: the public URL's host on the HTTPS port. The server
   * certificate covers that host, and user-data carries this URL with the CA certificate.
   */
  nodeUrl: string;
  tftpHost: string;
  tftpPort: number;
  dataDir: string;
  bootDir: string;
  ipxeDir: string;
  artifactsDir: string;
  templatesDir: string;
  adminToken: string | undefined;
  proxyDhcp: boolean;
  /** Interface names ProxyDHCP answers on; undefined = every non-loopback IPv4 interface. */
  proxyDhcpInterfaces: string[] | undefined;
  ipxeEfi: "snponly.efi" | "ipxe.efi";
  syslogPort: number | undefined;
  tokenTtlMs: number;
  credentialTtlMs: number;
  roleLeaseMs: number;
  logLevel: string;
  k3sVersion: string;
};

/** Thrown for a bad setting; `main` prints `message` as one line and exits non-zero. */
export class ConfigError extends Error {}

/** The first non-internal IPv4 address, the address machines at a small site most likely reach. */
export function firstNonLoopbackAddress(): string | undefined {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

/**
 * Parse settings from `env`. `EDGEJOIN_CONFIG` may name a JSON file of the same keys;
 * the environment wins over it. An EDGEJOIN_* name that is no setting (in either) is refused,
 * with the setting it most likely meant; an empty value counts as unset.
 */
export function loadConfig(env: Record<string, string | undefined>, deriveAddress: () => string | undefined = firstNonLoopbackAddress): Config {
  let fileValues: Record<string, string> = {};
  if (env.EDGEJOIN_CONFIG) {
    try {
      const raw = JSON.parse(readFileSync(env.EDGEJOIN_CONFIG, "utf8")) as unknown;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not an object");
      fileValues = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
    } catch (err) {
      throw new ConfigError(`EDGEJOIN_CONFIG: cannot read ${env.EDGEJOIN_CONFIG} as a JSON object of settings (${(err as Error).message})`);
    }
  }
  // A misspelt name would otherwise leave its setting at the default without a word.
  const unknownInFile = Object.keys(fileValues).filter((k) => !settingNames.includes(k));
  if (unknownInFile.length > 0) {
    throw new ConfigError(
      `EDGEJOIN_CONFIG: ${env.EDGEJOIN_CONFIG} has unknown setting${unknownInFile.length > 1 ? "s" : ""} ${describeUnknown(unknownInFile)}; the settings are listed in the README (Settings)`,
    );
  }
  // An empty value means unset, for unknown names too (a harness blanks inherited EDGEJOIN_* so).
  const given = Object.entries(env).filter(
    (entry): entry is [string, string] => entry[0].toUpperCase().startsWith("EDGEJOIN_") && entry[1] !== undefined && entry[1] !== "",
  );
  const unknownInEnv = given.map(([k]) => k).filter((k) => !settingNames.includes(k) && !otherNames.includes(k));
  if (unknownInEnv.length > 0) {
    throw new ConfigError(
      `unknown environment variable${unknownInEnv.length > 1 ? "s" : ""} ${describeUnknown(unknownInEnv.sort())}; edgejoin's settings are listed in the README (Settings)`,
    );
  }
  const merged: Record<string, string> = { ...fileValues };
  for (const [k, v] of given) if (settingNames.includes(k)) merged[k] = v;

  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "settings");
    const message = issue.message.startsWith(key) ? issue.message : `${key}: ${issue.message}`;
    throw new ConfigError(`bad setting ${message} (got ${JSON.stringify(merged[key])})`);
  }
  const e = parsed.data;
  let publicUrl = e.EDGEJOIN_PUBLIC_URL;
  let publicUrlDerived = false;
  if (!publicUrl) {
    const address = deriveAddress();
    if (!address) {
      throw new ConfigError(
        "EDGEJOIN_PUBLIC_URL is unset and this host has no non-loopback IPv4 address to derive it from: set EDGEJOIN_PUBLIC_URL=http://ADDRESS:PORT",
      );
    }
    publicUrl = `http://${address}:${e.EDGEJOIN_HTTP_PORT}`;
    publicUrlDerived = true;
  }
  const httpsHost = e.EDGEJOIN_HTTPS_HOST ?? e.EDGEJOIN_HTTP_HOST;
  const everyAddress = (host: string) => host === "0.0.0.0" || host === "::";
  const sameAddress = httpsHost === e.EDGEJOIN_HTTP_HOST || everyAddress(httpsHost) || everyAddress(e.EDGEJOIN_HTTP_HOST);
  if (e.EDGEJOIN_HTTPS_PORT === e.EDGEJOIN_HTTP_PORT && sameAddress) {
    throw new ConfigError(
      `EDGEJOIN_HTTPS_PORT: ${e.EDGEJOIN_HTTPS_PORT} is also EDGEJOIN_HTTP_PORT; the node API's HTTPS listener needs a port of its own (default 8443)`,
    );
  }
  const nodeUrl = new URL(publicUrl);
  nodeUrl.protocol = "https:";
  nodeUrl.port = String(e.EDGEJOIN_HTTPS_PORT);
  return {
    publicUrl,
    publicUrlDerived,
    httpHost: e.EDGEJOIN_HTTP_HOST,
    httpPort: e.EDGEJOIN_HTTP_PORT,
    httpsHost,
    httpsPort: e.EDGEJOIN_HTTPS_PORT,
    nodeUrl: nodeUrl.origin,
    tftpHost: e.EDGEJOIN_TFTP_HOST,
    tftpPort: e.EDGEJOIN_TFTP_PORT,
    dataDir: e.EDGEJOIN_DATA_DIR,
    bootDir: e.EDGEJOIN_BOOT_DIR,
    ipxeDir: e.EDGEJOIN_IPXE_DIR,
    artifactsDir: artifactsDirOf(e),
    templatesDir: e.EDGEJOIN_TEMPLATES_DIR ?? new URL("../templates", import.meta.url).pathname,
    adminToken: e.EDGEJOIN_ADMIN_TOKEN,
    proxyDhcp: e.EDGEJOIN_PROXY_DHCP,
    proxyDhcpInterfaces: e.EDGEJOIN_PROXY_DHCP_INTERFACES,
    ipxeEfi: e.EDGEJOIN_IPXE_EFI,
    syslogPort: e.EDGEJOIN_SYSLOG_PORT,
    tokenTtlMs: e.EDGEJOIN_TOKEN_TTL,
    credentialTtlMs: e.EDGEJOIN_CREDENTIAL_TTL,
    roleLeaseMs: e.EDGEJOIN_ROLE_LEASE,
    logLevel: e.EDGEJOIN_LOG_LEVEL,
    k3sVersion: e.EDGEJOIN_K3S_VERSION,
  };
}
