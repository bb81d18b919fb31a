/**
 * cloud-init NoCloud seed documents (meta-data, user-data, network-config) and their escape
 * policy. mustache knows nothing about YAML, so a template never receives raw text: every view
 * value is handed to it already serialized as a one-line YAML flow node (strings as ASCII-only
 * double-quoted scalars), the rendered text is parsed back, and the document is serialized again
 * from data. A value can therefore never open a key, a list item, a comment or a second document,
 * and what cloud-init (PyYAML, YAML 1.1) reads is exactly what was meant.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Mustache from "mustache";
import { Document, Scalar, isMap, parseDocument, visit, type DocumentOptions, type SchemaOptions } from "yaml";
import { stringTag, stringifyString } from "yaml/util";
import { z } from "zod";
import { dnsLabelPattern } from "../lifecycle/node-name.js";
import type { TemplateSet } from "./templates.js";

/** YAML 1.1 reads these bare words as booleans or null (PyYAML does): they are always quoted. */
const yaml11Word = /^(?:y|yes|n|no|true|false|on|off|null)$/i;
/** The `yaml` library's YAML 1.1 reads `e1` as a float (PyYAML does not): quoted too, for every reader. */
const exponentOnly = /^[eE][0-9]+$/;
/** A string that starts with a letter and would still be read as something else when bare. */
const readAsOther = (value: string) => yaml11Word.test(value) || exponentOnly.test(value);
/** Bare strings that mean the same string to every YAML reader. */
const plainSafe = /^[A-Za-z/][A-Za-z0-9_./-]*$/;

function hex(cp: number, width: number): string {
  return cp.toString(16).toUpperCase().padStart(width, "0");
}

/**
 * One string as a YAML double-quoted scalar made only of printable ASCII: anything else
 * (newlines, control characters, DEL, any non-ASCII code point) becomes an escape that both
 * PyYAML and the `yaml` library read back as the same character.
 */
export function yamlQuoted(value: string): string {
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (cp >= 0x20 && cp <= 0x7e) out += ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (cp <= 0xff) out += `\\x${hex(cp, 2)}`;
    else if (cp <= 0xffff) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `${out}"`;
}

/** Plain data as a one-line YAML flow node, safe to place wherever a template expects a value. */
export function yamlFlow(value: unknown): string {
  if (typeof value === "string") return yamlQuoted(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("a YAML view number must be finite");
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(yamlFlow).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${yamlQuoted(k)}: ${yamlFlow(v)}`)
      .join(", ")}}`;
  }
  throw new TypeError(`cannot put a ${typeof value} into YAML`);
}

/** A multi-line string a literal block scalar carries unchanged: printable ASCII and tabs, no edge spaces. */
function literalBlockSafe(value: string): boolean {
  if (!value.includes("\n") || !/^[\x20-\x7e\t\n]*$/.test(value) || /^[ \t]/.test(value)) return false;
  return value.split("\n").every((line) => !/[ \t]$/.test(line));
}

/**
 * The string tag used when serializing: bare words when unambiguous, scripts and other
 * multi-line ASCII text as literal blocks (readable), everything else via `yamlQuoted`.
 */
const yamlString = {
  ...stringTag,
  stringify(item: Scalar, ctx: Parameters<typeof stringifyString>[1], onComment?: () => void, onChompKeep?: () => void): string {
    const value = String(item.value);
    if (plainSafe.test(value) && !readAsOther(value)) return value;
    if (!ctx.implicitKey && !ctx.inFlow && literalBlockSafe(value)) {
      const block = new Scalar(value);
      block.type = Scalar.BLOCK_LITERAL;
      return stringifyString(block, ctx, onComment, onChompKeep);
    }
    return yamlQuoted(value);
  },
} satisfies typeof stringTag;

const yamlOptions: DocumentOptions & SchemaOptions = {
  version: "1.1",
  customTags: (tags) => tags.map((t) => (typeof t === "object" && t.tag === stringTag.tag && !("collection" in t) ? yamlString : t)),
};

/** Serialize plain data as a YAML document cloud-init reads back unchanged. */
export function toYaml(data: unknown): string {
  return new Document(data, yamlOptions).toString({ lineWidth: 0, minContentWidth: 0 });
}

/** Why a template produced something that is not a usable cloud-config. */
export class CloudConfigTemplateError extends Error {}

/** Parse YAML text with the rules cloud-init applies (YAML 1.1), refusing anything ambiguous. */
export function parseCloudConfig(text: string, what: string): Record<string, unknown> {
  const doc = parseDocument(text, { version: "1.1", uniqueKeys: true, strict: true, prettyErrors: false });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new CloudConfigTemplateError(`${what} is not valid YAML: ${problem.message}`);
  let alias = false;
  visit(doc, {
    Alias() {
      alias = true;
      return visit.BREAK;
    },
  });
  if (alias) throw new CloudConfigTemplateError(`${what} uses YAML aliases; write the values out`);
  if (!isMap(doc.contents)) throw new CloudConfigTemplateError(`${what} must be a YAML mapping`);
  return doc.toJS() as Record<string, unknown>;
}

/** A host name cloud-init and k3s both accept: one RFC 1123 label, lower case. */
export const hostnameLabel = z.string().regex(dnsLabelPattern, "a host name must be one RFC 1123 label: a-z, 0-9 and inner hyphens, at most 63 characters");

/** A cluster's own user-data template: a path relative to the templates folder that never climbs out. */
export const userDataTemplatePath = z
  .string()
  .max(200)
  .regex(
    /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/,
    "user_data_template must be a relative path inside the templates folder, e.g. cloud-init/site.user-data.mustache",
  )
  .refine((p) => !p.split("/").includes(".."), "user_data_template must not contain ..")
  .transform((p) => p.replace(/\.mustache$/, ""));

/** `user-data` views: what a template (ours or a cluster's own) may use. */
const agentFiles = {
  hostname: hostnameLabel,
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  /** The node API's base: https only, since enroll answers a credential. */
  nodeUrl: z.url({ protocol: /^https$/ }),
  /** edgejoin's CA certificate, the only one the agent trusts for nodeUrl. */
  caCert: z.string().regex(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$/, "one PEM certificate"),
  bootstrapToken: z.string().min(1),
  agentScript: z.string().min(1),
  agentUnit: z.string().min(1),
  sshAuthorizedKeys: z.array(z.string().min(1)),
  hasSshAuthorizedKeys: z.boolean(),
};

const cloudImageView = z.object(agentFiles).strict();

const autoinstallView = z
  .object({
    ...agentFiles,
    adminUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a Linux user name"),
    passwordHash: z.string().min(1),
    allowPasswordLogin: z.boolean(),
    storageLayout: z.enum(["lvm", "direct"]),
    progressUrl: z.url({ protocol: /^https?$/ }),
    /** argv of the installer's error-command that uploads its logs. */
    logUploadCommand: z.array(z.string()),
    /** The installer's rsyslog reporter destination, `@HOST:PORT` (UDP), when edgejoin's syslog receiver runs. */
    installerSyslog: z
      .string()
      .regex(/^@[A-Za-z0-9.-]+:\d{1,5}$/, "@HOST:PORT")
      .nullish(),
  })
  .strict();

/** What the cloud-image user-data template may use. */
export type CloudImageView = z.input<typeof cloudImageView>;
/** What the ubuntu-autoinstall user-data template may use. */
export type AutoinstallView = z.input<typeof autoinstallView>;

/** Where the enrollment agent, its unit and its configuration live on a machine. */
export const agentPaths = {
  script: "/usr/local/sbin/edgejoin-agent",
  unit: "/etc/systemd/system/edgejoin-agent.service",
  stateDir: "/var/lib/edgejoin-agent",
} as const;

/** Installer logs worth reading after a failed install, uploaded by the error-commands. */
export const installerLogFiles = ["/var/log/installer/subiquity-server-debug.log", "/var/log/installer/curtin-install.log"];

/**
 * argv that uploads the tail of each installer log to `logUrl` (`&file=NAME` appended). The URL
 * is an argument, never part of the script text, so nothing in it is interpreted by the shell.
 */
export function logUploadCommand(logUrl: string): string[] {
  const script = [
    'url="$1"; shift',
    'for f in "$@"; do',
    '  [ -f "$f" ] || continue',
    '  name=$(basename "$f")',
    "  if command -v curl >/dev/null; then",
    '    tail -c 262144 "$f" | curl -sS -m 60 -H "Content-Type: text/plain" --data-binary @- "$url&file=$name" || true',
    "  else",
    '    tail -c 262144 "$f" > /tmp/edgejoin-log-upload; wget -q -T 60 --header "Content-Type: text/plain" --post-file /tmp/edgejoin-log-upload -O /dev/null "$url&file=$name" || true',
    "  fi",
    "done",
  ].join("\n");
  return ["sh", "-c", script, "edgejoin-log-upload", logUrl, ...installerLogFiles];
}

/** A skeleton with one machine's values in its slots. */
function fill(skeleton: Skeleton, values: SlotValues): string {
  let out = skeleton.segments[0]!;
  for (let i = 0; i < skeleton.slots.length; i++) out += values[skeleton.slots[i]!] + skeleton.segments[i + 1]!;
  return out;
}

/** Template tokens mustache would print without our escape: refused, so no value bypasses it. */
function checkTemplate(source: string, name: string, allowed: ReadonlySet<string>): void {
  type Token = [string, string, number, number, Token[]?, ...unknown[]];
  const walk = (tokens: Token[], depth: number) => {
    for (const t of tokens) {
      const [type, value] = t;
      if (type === "&" || type === "{" || type === ">" || type === "=") {
        throw new CloudConfigTemplateError(`${name}: {{${type}${value}}} is not allowed; use {{${value}}}, values are YAML-serialized`);
      }
      if ((type === "name" || type === "#" || type === "^") && depth === 0 && !allowed.has(value.split(".")[0]!)) {
        throw new CloudConfigTemplateError(`${name}: unknown value {{${value}}}; known: ${[...allowed].join(", ")}`);
      }
      if (t[4]) walk(t[4], depth + 1);
    }
  };
  walk(Mustache.parse(source) as unknown as Token[], 0);
}

/** What differs between two machines of one cluster in their user-data: the rest is the cluster's. */
export type MachineValues = { hostname: string; mac: string; bootstrapToken: string; progressToken: string };

/** A user-data rendered once for a cluster with stand-ins where each machine's values go. */
type Skeleton = { segments: string[]; slots: (keyof SlotValues)[]; agentScript: string; agentUnit: string; caCert: string };
type SlotValues = MachineValues & { macHex: string };

const randomOf = (alphabet: string, n: number) => Array.from(randomBytes(n), (b) => alphabet[b % alphabet.length]).join("");
const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";
const base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const hexDigits = "0123456789abcdef";

/**
 * Stand-ins made once per process: each is drawn from the same characters as the value it stands
 * for, and starts with the same kind of character, so every choice the YAML writer makes (bare,
 * quoted, literal block; escapes) is the same for the stand-in as for the real value.
 */
const standIns = (() => {
  const mac = Array.from({ length: 6 }, () => randomOf(hexDigits, 2)).join(":");
  return {
    hostnameLetter: `q${randomOf(lowerAlnum, 23)}`,
    hostnameDigit: `7${randomOf(lowerAlnum, 23)}`,
    mac,
    macHex: mac.replaceAll(":", ""),
    bootstrapToken: `eyJ${randomOf(base64url, 29)}.${randomOf(base64url, 32)}.${randomOf(base64url, 32)}`,
    progressToken: randomOf(base64url, 43),
  };
})();

/** Renders every NoCloud seed document edgejoin answers. */
export class CloudInitRenderer {
  private agent?: { script: string; unit: string };
  /** One skeleton per template and cluster view (a handful); `false` where a skeleton did not reproduce a full rendering. */
  private readonly skeletons = new Map<string, Skeleton | false>();
  /** User-data answers filled into a skeleton, and rendered in full (a new view, or one that cannot use a skeleton). */
  readonly stats = { filled: 0, rendered: 0 };
  constructor(private readonly templates: TemplateSet) {}

  /**
   * `user-data` for Ubuntu's live installer, from a cluster's view of it (`build`) and one
   * machine's values. A boot storm asks this of every machine: mustache, the YAML parse and the
   * YAML write of ~20 KB took most of a user-data answer. They run once per cluster view, with
   * stand-ins for the machine's values, and each answer only puts its own values in place. The
   * first skeleton of each view is checked against a full rendering; a hostname a YAML reader takes for
   * something else when bare (`yes`, `on`, `e1`, …) is always rendered in full.
   */
  autoinstallFor(values: MachineValues, build: (v: MachineValues & { macHex: string }) => AutoinstallView, template?: string): string {
    return this.fromSkeleton(values, build, (view) => this.autoinstall(view, template), `autoinstall\0${template ?? ""}`);
  }

  /** `user-data` for a machine booting a cloud image, rendered like `autoinstallFor`. */
  cloudImageFor(values: MachineValues, build: (v: MachineValues & { macHex: string }) => CloudImageView, template?: string): string {
    return this.fromSkeleton(values, build, (view) => this.cloudImage(view, template), `cloud-image\0${template ?? ""}`);
  }

  private fromSkeleton<V extends CloudImageView>(values: MachineValues, build: (v: SlotValues) => V, render: (view: V) => string, kind: string): string {
    const real: SlotValues = { ...values, macHex: values.mac.replaceAll(":", "") };
    const hostnameShape = /^[a-z]/.test(values.hostname) ? "letter" : "digit";
    if (readAsOther(values.hostname) || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(values.mac) || !/^[A-Za-z0-9_-]+$/.test(values.progressToken)) {
      this.stats.rendered++;
      return render(build(real));
    }
    const stand: SlotValues = {
      hostname: hostnameShape === "letter" ? standIns.hostnameLetter : standIns.hostnameDigit,
      mac: standIns.mac,
      macHex: standIns.macHex,
      bootstrapToken: standIns.bootstrapToken,
      progressToken: standIns.progressToken,
    };
    const view = build(stand);
    const { agentScript, agentUnit, caCert, ...small } = view;
    const key = `${kind}\0${hostnameShape}\0${JSON.stringify(small)}`;
    let skeleton = this.skeletons.get(key);
    // The big constant strings are compared, not keyed: the same objects every time, so `===` is cheap.
    if (skeleton && (skeleton.agentScript !== agentScript || skeleton.agentUnit !== agentUnit || skeleton.caCert !== caCert)) skeleton = undefined;
    if (skeleton === undefined) {
      skeleton = { ...this.makeSkeleton(render(view), stand), agentScript, agentUnit, caCert };
      const full = render(build(real));
      if (fill(skeleton, real) !== full) skeleton = false;
      if (this.skeletons.size >= 64) this.skeletons.delete(this.skeletons.keys().next().value!);
      this.skeletons.set(key, skeleton);
      this.stats.rendered++;
      return full;
    }
    if (skeleton === false) {
      this.stats.rendered++;
      return render(build(real));
    }
    this.stats.filled++;
    return fill(skeleton, real);
  }

  private makeSkeleton(text: string, stand: SlotValues): Pick<Skeleton, "segments" | "slots"> {
    const slotOf = new Map(Object.entries(stand).map(([k, v]) => [v, k as keyof SlotValues]));
    // Longest first: the MAC's stand-in must not be cut by a shorter one inside it.
    const pattern = new RegExp(
      [...slotOf.keys()]
        .sort((a, b) => b.length - a.length)
        .map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join("|"),
      "g",
    );
    const segments: string[] = [];
    const slots: (keyof SlotValues)[] = [];
    let at = 0;
    for (const m of text.matchAll(pattern)) {
      segments.push(text.slice(at, m.index));
      slots.push(slotOf.get(m[0])!);
      at = m.index + m[0].length;
    }
    segments.push(text.slice(at));
    return { segments, slots };
  }

  /** The enrollment agent and its systemd unit, as shipped in templates/agent/. */
  agentFiles(): { script: string; unit: string } {
    this.agent ??= {
      script: readFileSync(join(this.templates.dir, "agent/edgejoin-agent.sh"), "utf8"),
      unit: readFileSync(join(this.templates.dir, "agent/edgejoin-agent.service"), "utf8"),
    };
    return this.agent;
  }

  /** `meta-data`: a stable instance-id and the machine's host name. */
  metaData(opts: { instanceId: string; hostname: string }): string {
    return toYaml({ "instance-id": opts.instanceId, "local-hostname": hostnameLabel.parse(opts.hostname) });
  }

  /** `network-config`: version 2, DHCP on the NIC that netbooted, matched by its MAC. */
  networkConfig(mac: string): string {
    return toYaml({
      version: 2,
      ethernets: { netboot: { match: { macaddress: mac }, dhcp4: true, dhcp6: true } },
    });
  }

  /** `user-data` for a machine booting a cloud image: plain cloud-config that installs the agent. */
  cloudImage(view: CloudImageView, template = "cloud-init/cloud-image.user-data"): string {
    return this.userData(template, cloudImageView, view);
  }

  /** `user-data` for Ubuntu's live installer: an `autoinstall:` section carrying the agent for first boot. */
  autoinstall(view: AutoinstallView, template = "cloud-init/ubuntu-autoinstall.user-data"): string {
    return this.userData(template, autoinstallView, view);
  }

  /** A cloud-config that does nothing: for machines that must not enroll (rejected, retired). */
  inert(): string {
    return "#cloud-config\n{}\n";
  }

  private userData<S extends z.ZodObject>(template: string, schema: S, view: z.input<S>): string {
    const checked = schema.parse(view) as Record<string, unknown>;
    const source = this.templates.source(template);
    checkTemplate(source, template, new Set(Object.keys(schema.shape)));
    const text = Mustache.render(source, checked, {}, { escape: yamlFlow as (v: string) => string });
    if (!text.startsWith("#cloud-config\n")) throw new CloudConfigTemplateError(`${template}: the first line must be #cloud-config`);
    const data = parseCloudConfig(text, template);
    return `#cloud-config\n${toYaml(data)}`;
  }
}
