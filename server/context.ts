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
import type { Metrics } from "./metrics/registry.js";

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
  /** SHA-256 of the admin bearer token; undefined refuses every admin request. */
  adminTokenHash: Buffer | undefined;
  /** This app's Prometheus registry and instruments (one per app: tests never share counters). */
  metrics: Metrics;
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
  };
};
