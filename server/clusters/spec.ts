/**
 * What an admin may say about a cluster, checked once at the edge. Every value here ends up in
 * an iPXE script (name, installer), a k3s config.yaml (labels, taints, registration address) or
 * a node name (hostname pattern), so each is held to what that format can carry safely.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { userDataTemplatePath } from "../render/cloud-init.js";
import { ipxeControlWord, ipxeToken, splitKernelArgs } from "../render/ipxe.js";
import { dnsLabelPattern, hostnamePatternProblem } from "../lifecycle/node-name.js";
import { isIpv4Cidr } from "../policy/cidr.js";

/** Desired server counts embedded etcd supports well: odd, so a majority always exists. */
export const serverCounts = [1, 3, 5, 7] as const;

/** A cluster name: a DNS label, because it appears in iPXE scripts and node names. */
export const clusterName = z
  .string()
  .regex(dnsLabelPattern, "name must be a DNS label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit");

/** Desired server count; the message says why only odd counts up to 7. */
export const desiredServers = z.number({ error: "servers must be a number: 1, 3, 5 or 7" }).refine((n) => (serverCounts as readonly number[]).includes(n), {
  message: "servers must be 1, 3, 5 or 7: embedded etcd needs an odd number of members to keep a majority, and more than 7 only slows writes",
});

const dnsName = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A VIP or DNS name: an IPv4/IPv6 address or a DNS name; it goes into the TLS SANs and the join URL. */
export const registrationAddress = z
  .string()
  .refine((v) => isIP(v) !== 0 || dnsName.test(v), "registration_address must be an IP address or a DNS name (no scheme, no port)");

/** A k3s release name as GitHub tags it. */
export const k3sVersion = z.string().regex(/^v\d+\.\d+\.\d+\+k3s\d+$/, "k3s_version must look like v1.31.4+k3s1");

// Kubernetes label syntax: optional DNS-subdomain prefix, a name of up to 63 characters.
const labelName = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const labelPrefix = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
function isLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash === -1) return labelName.test(key);
  return labelPrefix.test(key.slice(0, slash)) && labelName.test(key.slice(slash + 1));
}
const labelValue = (v: string) => v === "" || labelName.test(v);

/**
 * k3s passes node labels to the kubelet, which refuses to set labels under kubernetes.io or
 * k8s.io on itself except these: such a label would stop k3s from starting at all.
 */
function kubeletMaySet(key: string): boolean {
  const prefix = key.includes("/") ? key.slice(0, key.indexOf("/")) : "";
  if (!/(^|\.)(kubernetes\.io|k8s\.io)$/.test(prefix)) return true;
  return (
    /(^|\.)node\.kubernetes\.io$/.test(prefix) ||
    /(^|\.)kubelet\.kubernetes\.io$/.test(prefix) ||
    ["topology.kubernetes.io/region", "topology.kubernetes.io/zone"].includes(key)
  );
}

/** Kubernetes node labels: `prefix/name` keys, values of up to 63 label characters. */
export const nodeLabels = z
  .record(z.string(), z.string())
  .refine((r) => Object.keys(r).length <= 64, "at most 64 labels")
  .refine((r) => Object.keys(r).every(isLabelKey), "label keys must be Kubernetes label names, e.g. example.com/zone")
  .refine(
    (r) => Object.keys(r).every(kubeletMaySet),
    "labels under kubernetes.io or k8s.io are refused by the kubelet (except node.kubernetes.io/* and topology.kubernetes.io/zone|region): use your own prefix",
  )
  .refine(
    (r) => Object.values(r).every(labelValue),
    "label values must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  );

/** One k3s node taint: `key=value:Effect` or `key:Effect`. */
export const nodeTaint = z.string().refine((t) => {
  const m = /^([^=:]+)(=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/.exec(t);
  return !!m && isLabelKey(m[1]!) && labelValue(m[3] ?? "");
}, "taints must look like key=value:NoSchedule, key=value:PreferNoSchedule or key:NoExecute");

/** Source networks whose machines belong to the cluster. */
export const matchCidrs = z.array(z.string().refine(isIpv4Cidr, "match_cidrs entries must be IPv4 CIDRs such as 10.0.0.0/24")).max(64);

/** How node names are made: see node-name.ts. */
export const hostnamePattern = z
  .string()
  .max(63)
  .superRefine((p, ctx) => {
    const problem = hostnamePatternProblem(p);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** Kernel arguments: each space-separated word must be an iPXE-safe token; edgejoin adds the seed itself. */
export const kernelArgs = z
  .string()
  .max(2048)
  .superRefine((args, ctx) => {
    if (/[^\S ]/.test(args)) ctx.addIssue({ code: "custom", message: "kernel_args are separated by single spaces only" });
    for (const arg of splitKernelArgs(args)) {
      const control = ipxeControlWord(arg);
      if (control) ctx.addIssue({ code: "custom", message: `kernel argument ${JSON.stringify(arg.slice(0, 40))} is ${control}` });
      else if (!ipxeToken.safeParse(arg).success)
        ctx.addIssue({
          code: "custom",
          message: `kernel argument ${JSON.stringify(arg.slice(0, 40))} may hold only URL characters (no quotes, $ or control characters)`,
        });
      else if (/^ds=/.test(arg)) ctx.addIssue({ code: "custom", message: "kernel_args must not set ds=: edgejoin appends the NoCloud seed itself" });
    }
  });

/** The installer profile; each URL and argument iPXE-safe, each extra checked for its own format. */
export const installerProfile = z
  .object({
    kind: z.enum(["ubuntu-autoinstall", "cloud-image"], { error: "installer.kind must be ubuntu-autoinstall or cloud-image" }),
    kernel_url: ipxeToken,
    initrd_urls: z.array(ipxeToken).min(1, "installer.initrd_urls needs at least one initrd").max(8),
    kernel_args: kernelArgs.default(""),
    iso_url: ipxeToken.nullable().default(null),
    mirror_url: ipxeToken
      // iPXE fetches the kernel and initrd from the mirror, and Debian's iPXE cannot do https.
      .refine((u) => /^http:\/\/[^/]+/.test(u), "installer.mirror_url must be a plain http:// URL (iPXE cannot fetch https)")
      .nullable()
      .optional(),
    ssh_authorized_keys: z
      .array(
        z
          .string()
          .max(16_384)
          .regex(
            /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [\x20-\x7e]*)?$/,
            "installer.ssh_authorized_keys entries must be one OpenSSH public key line each",
          ),
      )
      .max(32)
      .optional(),
    admin_user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "installer.admin_user must be a Linux user name")
      .optional(),
    password_hash: z
      .string()
      .regex(/^\$(1|5|6|y|2[aby])\$[./A-Za-z0-9$=]+$/, "installer.password_hash must be a crypt(3) hash such as $6$... (never a plain password)")
      .nullable()
      .optional(),
    storage_layout: z.enum(["lvm", "direct"], { error: "installer.storage_layout must be lvm or direct" }).optional(),
  })
  .strict();

/**
 * When an unknown machine is wiped and installed: `immediate` (at first boot; approval comes after
 * enrollment) or `after_approval` (it waits at an iPXE screen until an admin, a rule or a
 * pre-registration approves it).
 */
export const installPolicy = z.enum(["immediate", "after_approval"], { error: "install_policy must be immediate or after_approval" });

const registryHost = z.string().regex(/^(\*|[A-Za-z0-9.-]+(:\d{1,5})?)$/, "registries: registry names are host names (docker.io, registry.local:5000) or *");
const registryEndpoint = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/[^\s"']+$/, "registries: mirror endpoints are http:// or https:// URLs");
const filePath = z
  .string()
  .max(4096)
  .regex(/^\/[^\0\n]*$/, "registries: file paths must be absolute paths on the machine");

/**
 * k3s `registries.yaml` (https://docs.k3s.io/installation/private-registry): mirrors for a local
 * registry and per-registry auth/TLS. Unknown keys are refused: containerd would skip them silently.
 */
export const k3sRegistries = z
  .object({
    mirrors: z
      .record(
        registryHost,
        z.object({ endpoint: z.array(registryEndpoint).min(1).max(16), rewrite: z.record(z.string().max(512), z.string().max(512)).optional() }).strict(),
      )
      .optional(),
    configs: z
      .record(
        registryHost,
        z
          .object({
            auth: z
              .object({ username: z.string().max(512), password: z.string().max(4096), auth: z.string().max(4096), identity_token: z.string().max(8192) })
              .partial()
              .strict()
              .optional(),
            tls: z.object({ ca_file: filePath, cert_file: filePath, key_file: filePath, insecure_skip_verify: z.boolean() }).partial().strict().optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict()
  .refine((r) => Object.keys(r.mirrors ?? {}).length + Object.keys(r.configs ?? {}).length <= 64, "registries: at most 64 entries");

/** `POST /api/v1/clusters` body. */
export const clusterCreate = z
  .object({
    name: clusterName,
    servers: desiredServers.default(1),
    registration_address: registrationAddress.nullable().default(null),
    k3s_version: k3sVersion.optional(),
    is_default: z.boolean().default(false),
    installer: installerProfile.optional(),
    labels: nodeLabels.default({}),
    taints: z.array(nodeTaint).max(32).default([]),
    hostname_pattern: hostnamePattern.default("node-{mac}"),
    match_cidrs: matchCidrs.default([]),
    user_data_template: userDataTemplatePath.nullable().default(null),
    registries: k3sRegistries.nullable().default(null),
    install_policy: installPolicy.default("immediate"),
  })
  .strict();

/** `PATCH /api/v1/clusters/:id` body: the same names, each optional. */
export const clusterPatch = z
  .object({
    name: clusterName,
    servers: desiredServers,
    registration_address: registrationAddress.nullable(),
    k3s_version: k3sVersion,
    is_default: z.boolean(),
    installer: installerProfile,
    labels: nodeLabels,
    taints: z.array(nodeTaint).max(32),
    hostname_pattern: hostnamePattern,
    match_cidrs: matchCidrs,
    user_data_template: userDataTemplatePath.nullable(),
    registries: k3sRegistries.nullable(),
    install_policy: installPolicy,
  })
  .partial()
  .strict();

/** A validated create body. */
export type ClusterCreate = z.output<typeof clusterCreate>;
/** A validated patch body. */
export type ClusterPatch = z.output<typeof clusterPatch>;
