/**
 * iPXE scripts. iPXE expands `${...}`, splits commands on a lone `;`, ends a line at a newline
 * and splits arguments on spaces, so every value placed in a script is restricted to an
 * alphabet where none of that can happen; nothing is escaped, anything else is refused.
 */
import { z } from "zod";
import type { InstallerProfile } from "../../db/schema.js";
import type { TemplateSet } from "./templates.js";

/**
 * Why a word would be iPXE syntax rather than an argument: iPXE splits a line into commands at a
 * word that is exactly `;`, `&&` or `||`, and ignores the rest of a line from a word starting
 * with `#`. Such a word in a kernel argument list would run or hide commands.
 */
export function ipxeControlWord(word: string): string | undefined {
  if (word === ";" || word.includes("&&") || word.includes("||")) return "an iPXE command separator (;, && or ||)";
  if (word.startsWith("#")) return "a word starting with # (iPXE ignores the rest of the line)";
  return undefined;
}

/** One URL or kernel argument: no whitespace, no `$`, no quotes, no backslash, no iPXE separator or comment. */
export const ipxeToken = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^[A-Za-z0-9._~:/?#[\]@!&()*+,;=%-]+$/, "only URL characters, no spaces, quotes or $")
  .refine((v) => ipxeControlWord(v) === undefined, "must not be an iPXE command separator (;, &&, ||) or start with #");

/** Free text echoed to the console (a fixed message of ours, never input): letters, digits, punctuation, spaces. */
const ipxeMessage = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9 .,:()'/_-]*$/);

/** Kernel arguments as space-separated tokens, each checked alone. */
export function splitKernelArgs(args: string): string[] {
  return args.split(/ +/).filter((a) => a !== "");
}

/** iPXE's `syslog` setting: an IPv4 address (iPXE always sends to UDP 514). */
const syslogHost = z.ipv4().optional();
const chainView = z.object({ bootUrl: ipxeToken, syslog: syslogHost });
const installView = z.object({
  syslog: syslogHost,
  machineLabel: ipxeToken,
  cluster: ipxeToken,
  kernelUrl: ipxeToken,
  initrds: z.array(z.object({ url: ipxeToken, name: ipxeToken })).min(1),
  kernelArgs: z.array(ipxeToken),
});
const localDiskView = z.object({ machineLabel: ipxeToken });
const waitView = z.object({ machineLabel: ipxeToken, cluster: ipxeToken, bootUrl: ipxeToken });
const messageView = z.object({ title: ipxeMessage, lines: z.array(z.object({ text: ipxeMessage })) });

/** Renders every boot script edgejoin answers. */
export class IpxeRenderer {
  constructor(
    private readonly templates: TemplateSet,
    private readonly publicUrl: string,
    /** Where iPXE sends its console lines (`set syslog`), when edgejoin's receiver listens on 514. */
    private readonly syslog?: string,
  ) {}

  /** The answer to a bare `GET /boot.ipxe`: chain to itself with the machine's identity. */
  chain(): string {
    // The template adds the query with its ${...} variables verbatim; only the base is a value.
    return this.templates.render("ipxe/chain.ipxe", chainView, { bootUrl: `${this.publicUrl}/boot.ipxe`, syslog: this.syslog });
  }

  /** Boot the cluster's installer (URLs already absolute: `Artifacts.resolveInstaller`) with this machine's NoCloud seed appended. */
  install(opts: { mac: string; cluster: string; installer: InstallerProfile }): string {
    const { installer } = opts;
    const seed = `ds=nocloud-net;s=${this.publicUrl}/cloud-init/${opts.mac}/`;
    const initrds = installer.initrd_urls.map((url) => {
      // UEFI iPXE hands the kernel only initrds named on its command line (`initrd=NAME`).
      return {
        url,
        name:
          url
            .replace(/[?#].*$/, "")
            .split("/")
            .pop() || "initrd",
      };
    });
    const kernelArgs = [
      ...initrds.map((i) => `initrd=${i.name}`),
      ...(installer.kind === "ubuntu-autoinstall" && installer.iso_url ? [`url=${installer.iso_url}`, "autoinstall"] : []),
      ...splitKernelArgs(installer.kernel_args),
      seed,
    ];
    return this.templates.render("ipxe/install.ipxe", installView, {
      syslog: this.syslog,
      machineLabel: opts.mac,
      cluster: opts.cluster,
      kernelUrl: installer.kernel_url,
      initrds,
      kernelArgs,
    });
  }

  /** An installed machine boots from its own disk. */
  localDisk(mac: string): string {
    return this.templates.render("ipxe/local-disk.ipxe", localDiskView, { machineLabel: mac });
  }

  /** Not approved yet in an `after_approval` cluster: say so, install nothing, ask again every 30 s (through the chain, with its identity). */
  waitForApproval(opts: { mac: string; cluster: string }): string {
    return this.templates.render("ipxe/wait-approval.ipxe", waitView, {
      machineLabel: opts.mac,
      cluster: opts.cluster,
      bootUrl: `${this.publicUrl}/boot.ipxe`,
    });
  }

  /** A console message and no install: rejected, retired, or a request we cannot read. */
  message(title: string, lines: string[]): string {
    return this.templates.render("ipxe/message.ipxe", messageView, { title, lines: lines.map((text) => ({ text })) });
  }
}
