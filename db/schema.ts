/**
 * edgejoin's whole state: one SQLite file. Timestamps are integer milliseconds since the epoch
 * (the injected clock's unit); JSON columns hold plain data validated at the edge.
 */
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
// Type-only: the machine's vocabulary is owned by the pure lifecycle module; nothing of server/ loads here.
import type { InstallPolicy, MachineRole, MachineState, RolePreference } from "../server/lifecycle/machine.js";

/** The installer profile a cluster boots its not-yet-installed machines with. */
export type InstallerProfile = {
  kind: "ubuntu-autoinstall" | "cloud-image";
  kernel_url: string;
  initrd_urls: string[];
  kernel_args: string;
  iso_url: string | null;
  /** Base URL for installer files (paths relative to /artifacts/) that the artifacts folder lacks. */
  mirror_url?: string | null;
  /** SSH keys for the installed system's admin user (both kinds). */
  ssh_authorized_keys?: string[];
  /** ubuntu-autoinstall: the admin user (default `edgejoin`) and its crypted password; none = SSH keys only. */
  admin_user?: string;
  password_hash?: string | null;
  /** ubuntu-autoinstall: Ubuntu's guided storage layout (default `direct`: the whole largest disk). */
  storage_layout?: "lvm" | "direct";
};

/** k3s `registries.yaml`: registry mirrors and per-registry TLS/auth (https://docs.k3s.io/installation/private-registry). */
export type K3sRegistries = {
  mirrors?: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }>;
  configs?: Record<
    string,
    {
      auth?: { username?: string; password?: string; auth?: string; identity_token?: string };
      tls?: { ca_file?: string; cert_file?: string; key_file?: string; insecure_skip_verify?: boolean };
    }
  >;
};

/** An enroll refused because the machine already enrolled in this install. */
export type MachineConflict = { at: number; source_ip: string | null; facts: Record<string, unknown> | null };

/** What an anonymous sighting (boot or seed request) said about the machine. */
export type ReportedSighting = {
  at: number;
  via: string;
  ip: string | null;
  uuid?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  arch?: string;
  platform?: string;
};

export const clusters = sqliteTable("clusters", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  /** Desired server count: 1, 3, 5 or 7 (embedded etcd needs an odd number). */
  servers: integer("servers").notNull().default(1),
  registrationAddress: text("registration_address"),
  k3sVersion: text("k3s_version").notNull(),
  isDefault: integer("is_default", { mode: "boolean" }).notNull().default(false),
  installer: text("installer", { mode: "json" }).$type<InstallerProfile>().notNull(),
  labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
  taints: text("taints", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  hostnamePattern: text("hostname_pattern").notNull().default("node-{mac}"),
  matchCidrs: text("match_cidrs", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  /** Path (relative to the templates folder) of a cluster-specific user-data template. */
  userDataTemplate: text("user_data_template"),
  /** k3s shared secrets, made with a CSPRNG at creation; never returned by list/get. */
  serverToken: text("server_token").notNull(),
  agentToken: text("agent_token").notNull(),
  /** SHA-256 of the init server's CA certificate, once it reported it. */
  caHash: text("ca_hash"),
  /** When the init server reported k3s running: from then on nobody is ever given `cluster-init` again. */
  initStartedAt: integer("init_started_at"),
  /** When all desired servers were first ready together: before it the quorum is `forming`, after it `degraded`/`lost` mean loss. */
  formedAt: integer("formed_at"),
  /** The admin kubeconfig the init server's agent uploaded after `ready` (a secret, like the tokens above). */
  /** k3s `registries.yaml` (mirrors of a local registry) as data; the agent writes it to /etc/rancher/k3s/. Null = none. */
  registries: text("registries", { mode: "json" }).$type<K3sRegistries>(),
  adminKubeconfig: text("admin_kubeconfig"),
  kubeconfigAt: integer("kubeconfig_at"),
  /**
   * How many servers were ready the last time every desired server was. Fewer ready than this is
   * a loss (`degraded`/`lost`); a desired count raised above it while none is lost is `scaling`.
   */
  readyServersAtOk: integer("ready_servers_at_ok"),
  /** `immediate`: an unknown machine installs at once; `after_approval`: it waits at an iPXE screen until approved. */
  installPolicy: text("install_policy").$type<InstallPolicy>().notNull().default("immediate"),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const machines = sqliteTable(
  "machines",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** Lower-case colon form, normalized once at the edge. */
    mac: text("mac").notNull().unique(),
    uuid: text("uuid"),
    serial: text("serial"),
    manufacturer: text("manufacturer"),
    product: text("product"),
    arch: text("arch"),
    platform: text("platform"),
    lastIp: text("last_ip"),
    hostname: text("hostname"),
    state: text("state").$type<MachineState>().notNull().default("discovered"),
    role: text("role").$type<MachineRole>(),
    clusterId: integer("cluster_id").references(() => clusters.id),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    facts: text("facts", { mode: "json" }).$type<Record<string, unknown>>(),
    /** Bumped when the machine's credentials must stop working (reject, retire, reinstall, seat taken back, a new enrollment). */
    credentialGeneration: integer("credential_generation").notNull().default(0),
    /** When the role was given; with the lease setting it says when the seat is taken back. */
    roleAssignedAt: integer("role_assigned_at"),
    k3sStartedAt: integer("k3s_started_at"),
    readyAt: integer("ready_at"),
    caHash: text("ca_hash"),
    /** What the admin asked for at approval (`auto`, `server`, `agent`); `agent` is honoured, `server` only if a seat is free. */
    rolePreference: text("role_preference").$type<RolePreference>().notNull().default("auto"),
    /** When its quorum seat was taken back (lease expired, or failure before k3s started); it may not fetch that config again. */
    seatRevokedAt: integer("seat_revoked_at"),
    /** Set when a machine reports k3s running on a seat that was taken back from it. */
    splitBrainRisk: integer("split_brain_risk", { mode: "boolean" }).notNull().default(false),
    /** Who approved it this time: `admin:<token name>` (or `admin`), `rule:<rule name>`, `machine:<pre-registration id>`. */
    approvedBy: text("approved_by"),
    /** Approved before its first enrollment (from `discovered`): that one enroll keeps it approved. */
    approvedBeforeEnroll: integer("approved_before_enroll", { mode: "boolean" }).notNull().default(false),
    /** When its installer last reported a failure (`result: FAIL` or an error log); cleared by its next enroll. */
    installFailedAt: integer("install_failed_at"),
    /** Unused since progress tokens are derived per install (server/store/install-progress.ts); kept for old databases. */
    progressTokenHash: text("progress_token_hash"),
    /** Which install of this machine is current: bumped by an admin's reinstall (or an approval that needs one). */
    installGeneration: integer("install_generation").notNull().default(0),
    /** The install in which the machine last enrolled; null when it never did or its enrollment was revoked. */
    enrolledGeneration: integer("enrolled_generation"),
    /** When the installer reported its final success for the current install; null until then. */
    installedAt: integer("installed_at"),
    /** Refused second enrollments (newest last, bounded): an admin must dismiss them. */
    conflicts: text("conflicts", { mode: "json" }).$type<MachineConflict[]>().notNull().default(sql`'[]'`),
    /** What anonymous boot and seed requests last reported; never applied to the identity above. */
    reported: text("reported", { mode: "json" }).$type<ReportedSighting>(),
    firstSeenAt: integer("first_seen_at").notNull(),
    lastSeenAt: integer("last_seen_at").notNull(),
    stateChangedAt: integer("state_changed_at").notNull(),
  },
  (t) => [
    index("machines_cluster_role").on(t.clusterId, t.role),
    index("machines_state").on(t.state),
    // The node-name rule asks on every seed fetch whether another machine of the cluster holds a name.
    index("machines_cluster_hostname").on(t.clusterId, t.hostname),
    // At most one machine holds the init seat of a cluster at any moment, whatever the code above does.
    uniqueIndex("machines_one_init_per_cluster").on(t.clusterId).where(sql`${t.role} = 'init'`),
  ],
);

/** Who did what, when, from where. Append-only. */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at").notNull(),
    /** `admin`, `machine:<id>`, `system`, `anonymous`. */
    actor: text("actor").notNull(),
    sourceIp: text("source_ip"),
    action: text("action").notNull(),
    machineId: integer("machine_id"),
    clusterId: integer("cluster_id"),
    detail: text("detail", { mode: "json" }).$type<Record<string, unknown>>(),
  },
  (t) => [index("audit_machine").on(t.machineId), index("audit_at").on(t.at)],
);

/** Progress reported by a machine: its agent's events and its installer's webhook posts. */
export const nodeEvents = sqliteTable(
  "node_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    machineId: integer("machine_id")
      .notNull()
      .references(() => machines.id),
    at: integer("at").notNull(),
    /** `agent` or `installer`. */
    source: text("source").notNull(),
    type: text("type").notNull(),
    detail: text("detail"),
    caHash: text("ca_hash"),
  },
  (t) => [index("node_events_machine").on(t.machineId, t.at)],
);

/** Ed25519 signing keys. The private half lives in the data folder (mode 0600), not here. */
export const signingKeys = sqliteTable("signing_keys", {
  kid: text("kid").primaryKey(),
  publicJwk: text("public_jwk", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  createdAt: integer("created_at").notNull(),
  /** Set when a newer key became active; the public key stays published until tokens expire. */
  retiredAt: integer("retired_at"),
});

/** Bootstrap-token ids already spent by a successful enroll (single use). */
export const usedTokens = sqliteTable("used_tokens", {
  jti: text("jti").primaryKey(),
  machineId: integer("machine_id").notNull(),
  usedAt: integer("used_at").notNull(),
  expiresAt: integer("expires_at").notNull(),
});

/** Small server-wide facts, e.g. the admin token's hash. */
export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

export type ClusterRow = typeof clusters.$inferSelect;
export type MachineRow = typeof machines.$inferSelect;

/** Named admin bearer tokens; only each token's SHA-256 is kept. `initial` is the first start's. */
export const adminTokens = sqliteTable("admin_tokens", {
  name: text("name").primaryKey(),
  /** Hex SHA-256 of the token; unique so one secret never answers to two names. */
  sha256: text("sha256").notNull().unique(),
  createdAt: integer("created_at").notNull(),
  /** The actor that made it (`system` for the first start's, `admin:<name>` otherwise). */
  createdBy: text("created_by").notNull(),
  lastUsedAt: integer("last_used_at"),
});

/**
 * What a machine did that no other table keeps: TFTP transfers (by address: TFTP knows no MAC),
 * `/boot.ipxe` answers, seed fetches, config polls. A repeat of the newest entry of the same
 * machine (or address) bumps `count` and `last_at` instead of adding a row, and old rows are
 * trimmed per machine and per address, so polling never grows the table without bound.
 */
export const timelineEntries = sqliteTable(
  "timeline_entries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** Null for TFTP transfers, which are filed by address. */
    machineId: integer("machine_id"),
    sourceIp: text("source_ip"),
    /** `tftp`, `boot`, `seed`, `config`, `syslog`. */
    kind: text("kind").notNull(),
    detail: text("detail").notNull(),
    count: integer("count").notNull().default(1),
    firstAt: integer("first_at").notNull(),
    lastAt: integer("last_at").notNull(),
  },
  (t) => [index("timeline_machine").on(t.machineId, t.id), index("timeline_ip").on(t.sourceIp, t.id)],
);

/** Pre-registered machines: approved the moment one of them enrolls (`approved_by: machine:<id>`). */
export const preRegistrations = sqliteTable(
  "pre_registrations",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** Exactly one of mac, serial, uuid: the identity the admin expects (normalized at the edge). */
    mac: text("mac"),
    serial: text("serial"),
    uuid: text("uuid"),
    clusterId: integer("cluster_id")
      .notNull()
      .references(() => clusters.id),
    hostname: text("hostname"),
    labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    role: text("role").$type<RolePreference>().notNull().default("auto"),
    /** The machine it approved; it approves no other machine after that (serials are no secrets). */
    machineId: integer("machine_id"),
    usedAt: integer("used_at"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("pre_registrations_mac").on(t.mac), index("pre_registrations_serial").on(t.serial), index("pre_registrations_uuid").on(t.uuid)],
);

/** Auto-approve rules: every given condition must match; `remaining` counts down inside the enroll transaction. */
export const approvalRules = sqliteTable("approval_rules", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull().unique(),
  clusterId: integer("cluster_id")
    .notNull()
    .references(() => clusters.id),
  matchCidr: text("match_cidr"),
  matchManufacturer: text("match_manufacturer"),
  matchProduct: text("match_product"),
  matchSerialPrefix: text("match_serial_prefix"),
  role: text("role").$type<RolePreference>(),
  /** How many more machines it may approve; null = no limit. */
  remaining: integer("remaining"),
  /** How many it approved so far. */
  approvedCount: integer("approved_count").notNull().default(0),
  enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export type PreRegistrationRow = typeof preRegistrations.$inferSelect;
export type ApprovalRuleRow = typeof approvalRules.$inferSelect;

/**
 * Console sign-ins. The cookie holds a random session id; only its SHA-256 is kept, so a copy of
 * the database signs nobody in. A session acts as the admin token it was opened with.
 */
export const uiSessions = sqliteTable(
  "ui_sessions",
  {
    idSha256: text("id_sha256").primaryKey(),
    /** The admin token's name: the session's actions are audited as `admin:<name>`. */
    tokenName: text("token_name").notNull(),
    /** The synchronizer token every state-changing console request must carry. */
    csrfToken: text("csrf_token").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("ui_sessions_expires").on(t.expiresAt)],
);

export type UiSessionRow = typeof uiSessions.$inferSelect;

/**
 * Syslog lines booting machines sent (iPXE, the installer, the agent), filed under the machine
 * whose last known address sent them. Trimmed to the newest per machine and in total on insert.
 */
export const syslogMessages = sqliteTable(
  "syslog_messages",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    machineId: integer("machine_id")
      .notNull()
      .references(() => machines.id, { onDelete: "cascade" }),
    receivedAt: integer("received_at").notNull(),
    sourceIp: text("source_ip").notNull(),
    facility: integer("facility").notNull(),
    severity: integer("severity").notNull(),
    /** The sender's own timestamp, as text: a booting machine's clock is often wrong. */
    sentAt: text("sent_at"),
    hostname: text("hostname"),
    app: text("app"),
    message: text("message").notNull(),
  },
  (t) => [index("syslog_machine").on(t.machineId, t.id)],
);

export type SyslogRow = typeof syslogMessages.$inferSelect;
