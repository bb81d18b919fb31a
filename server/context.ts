/** What handlers get from the app factory: dependencies, never module-level singletons. */
import type { Logger } from "pino";
import type { Db } from "../db/client.js";
import type { Config } from "./config.js";
import type { MachineRow } from "../db/schema.js";
import type { Artifacts } from "./files/artifacts.js";
import type { IpxeRenderer } from "./render/ipxe.js";
import type { CloudInitRenderer } from "./render/cloud-init.js";
import type { TemplateSet } from "./render/templates.js";
import type { Keyring } from "./enrollment/keyring.js";
import type { AnonymousLimits } from "./rate-limit.js";
import type { Metrics } from "./metrics/registry.js";
import type { BootAnswer } from "./lifecycle/machine.js";

/** Milliseconds since the epoch; tests pass a fixed or steppable clock. */
export type Clock = () => number;

export type Deps = {
  db: Db;
  config: Config;
  clock: Clock;
  logger: Logger;
  templates: TemplateSet;
  ipxe: IpxeRenderer;
  cloudInit: CloudInitRenderer;
  /** The artifacts folder: installer and k3s URLs, and which files are there. */
  artifacts: Artifacts;
  /** Signs bootstrap tokens and node credentials; verifies with current and retired keys. */
  keyring: Keyring;
  /** edgejoin's CA certificate (PEM): served at /.well-known/edgejoin-ca.pem and pinned by agents through user-data. */
  caCertPem: string;
  /** The clock quorum leases are measured on: monotonic, so a wall-clock step takes back no seat. */
  leaseClock: Clock;
  /** Bounds on what unauthenticated clients can make edgejoin store (new machines, refusal audits). */
  limits: AnonymousLimits;
  /** SHA-256 of EDGEJOIN_ADMIN_TOKEN (accepted as the token named `env`); named tokens live in the database. */
  adminTokenHash: Buffer | undefined;
  /** This app's Prometheus registry and instruments (one per app: tests never share counters). */
  metrics: Metrics;
  /**
   * Whether anything answers on an IP address and TCP port now (undefined: not checked), for the
   * registration-address warning. main sets it; an app built by a test without it checks nothing,
   * so no test reaches for an address it does not own.
   */
  probeTcp?: (host: string, port: number) => Promise<boolean | undefined>;
  /** Why a URL cannot be fetched (undefined: it can), for the mirror warning; like probeTcp, set by main only. */
  probeUrl?: (url: string) => Promise<string | undefined>;
  /** Whether main's listeners (TFTP) are bound, for /readyz; absent (an app built by a test) = ready. */
  readiness?: () => { ready: true } | { ready: false; reason: string };
};

export type { MachineRow } from "../db/schema.js";

export type AppEnv = {
  Variables: {
    deps: Deps;
    requestId: string;
    /** The machine a boot or cloud-init request is about, put there by `selectMachine`. */
    machine: MachineRow;
    /** The requester's address as the socket saw it. */
    sourceIp: string;
    /** The generation of the node credential a node request carried, put there by `nodeAuth`. */
    credentialGeneration: number;
    /** The name of the admin token an admin request carried, put there by `adminAuth`. */
    adminToken: string;
    /** The iPXE script `/boot.ipxe` answered a known machine, and the rule's answer it renders: read by the log line and the timeline. */
    bootScript: { answer: BootAnswer; script: string };
  };
};
