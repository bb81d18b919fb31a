/**
 * Settings: parsed once from the environment (and optionally a JSON config file), validated,
 * typed from the schema. A bad value stops start with one line naming the setting and the fix.
 */
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { readFileSync } from "node:fs";
import { z } from "zod";

/** "90", "90s", "20m", "24h", "7d" → milliseconds. */
const duration = (name: string) =>
  z
    .string()
    .regex(/^\d{1,9}[smhd]?$/, `${name} must be a duration such as 90s, 20m, 24h or 7d`)
    .transform((v) => {
      const n = Number.parseInt(v, 10);
      const unit = v.at(-1) ?? "s";
      const factor = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit] ?? 1_000;
      return n * factor;
    });

const port = (name: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `${name} must be a port number 1-65535`)
    .transform(Number)
    .refine((p) => p >= 1 && p <= 65_535, `${name} must be a port number 1-65535`);

const onOff = (name: string) =>
  z.enum(["on", "off"], { error: `${name} must be "on" or "off"` }).transform((v) => v === "on");

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
  EDGEJOIN_ADMIN_TOKEN: z
    .string()
    .min(24, "EDGEJOIN_ADMIN_TOKEN must be at least 24 characters; generate one with `openssl rand -hex 32`")
    .optional(),
  EDGEJOIN_PROXY_DHCP: onOff("EDGEJOIN_PROXY_DHCP").default(false),
  EDGEJOIN_SYSLOG_PORT: port("EDGEJOIN_SYSLOG_PORT").optional(),
  EDGEJOIN_TOKEN_TTL: duration("EDGEJOIN_TOKEN_TTL").default(86_400_000),
  EDGEJOIN_CREDENTIAL_TTL: duration("EDGEJOIN_CREDENTIAL_TTL").default(365 * 86_400_000),
  EDGEJOIN_ROLE_LEASE: duration("EDGEJOIN_ROLE_LEASE").default(20 * 60_000),
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

/** Settings after parsing: the only shape the rest of edgejoin sees. */
export type Config = {
  publicUrl: string;
  /** True when publicUrl was guessed from the host's first non-loopback address. */
  publicUrlDerived: boolean;
  httpHost: string;
  httpPort: number;
  tftpHost: string;
  tftpPort: number;
  dataDir: string;
  bootDir: string;
  ipxeDir: string;
  artifactsDir: string;
  templatesDir: string;
  adminToken: string | undefined;
  proxyDhcp: boolean;
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
 * the environment wins over it.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  deriveAddress: () => string | undefined = firstNonLoopbackAddress,
): Config {
  let fileValues: Record<string, string> = {};
  if (env.EDGEJOIN_CONFIG) {
    try {
      const raw = JSON.parse(readFileSync(env.EDGEJOIN_CONFIG, "utf8")) as unknown;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not an object");
      fileValues = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
    } catch (err) {
      throw new ConfigError(
        `EDGEJOIN_CONFIG: cannot read ${env.EDGEJOIN_CONFIG} as a JSON object of settings (${(err as Error).message})`,
      );
    }
  }
  const merged: Record<string, string> = { ...fileValues };
  for (const [k, v] of Object.entries(env)) if (k.startsWith("EDGEJOIN_") && v !== undefined && v !== "") merged[k] = v;

  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "settings");
    const message = issue.message.startsWith(key) ? issue.message : `${key}: ${issue.message}`;
    throw new ConfigError(`bad setting ${message} (got ${JSON.stringify(merged[key])})`);
  }
  const e = parsed.data;
  // Accepted names from the contract whose servers are not built yet: refusing beats a silent no-op.
  if (e.EDGEJOIN_PROXY_DHCP) {
    throw new ConfigError(
      "EDGEJOIN_PROXY_DHCP=on: edgejoin's ProxyDHCP is not available in this version; set it to off and configure the site's DHCP server as the README shows",
    );
  }
  if (e.EDGEJOIN_SYSLOG_PORT !== undefined) {
    throw new ConfigError("EDGEJOIN_SYSLOG_PORT: the installer syslog receiver is not available in this version; unset it");
  }
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
  return {
    publicUrl,
    publicUrlDerived,
    httpHost: e.EDGEJOIN_HTTP_HOST,
    httpPort: e.EDGEJOIN_HTTP_PORT,
    tftpHost: e.EDGEJOIN_TFTP_HOST,
    tftpPort: e.EDGEJOIN_TFTP_PORT,
    dataDir: e.EDGEJOIN_DATA_DIR,
    bootDir: e.EDGEJOIN_BOOT_DIR,
    ipxeDir: e.EDGEJOIN_IPXE_DIR,
    artifactsDir: e.EDGEJOIN_ARTIFACTS_DIR ?? `${e.EDGEJOIN_DATA_DIR}/artifacts`,
    templatesDir: e.EDGEJOIN_TEMPLATES_DIR ?? new URL("../templates", import.meta.url).pathname,
    adminToken: e.EDGEJOIN_ADMIN_TOKEN,
    proxyDhcp: e.EDGEJOIN_PROXY_DHCP,
    syslogPort: e.EDGEJOIN_SYSLOG_PORT,
    tokenTtlMs: e.EDGEJOIN_TOKEN_TTL,
    credentialTtlMs: e.EDGEJOIN_CREDENTIAL_TTL,
    roleLeaseMs: e.EDGEJOIN_ROLE_LEASE,
    logLevel: e.EDGEJOIN_LOG_LEVEL,
    k3sVersion: e.EDGEJOIN_K3S_VERSION,
  };
}
