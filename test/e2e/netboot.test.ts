/**
 * End to end with real clients: a UEFI QEMU machine (OVMF's own PXE client, as on a NUC) gets
 * its address and boot file from the site's dnsmasq configured as the README says, fetches iPXE
 * from edgejoin's TFTP server, and iPXE, asking DHCP again as `iPXE`, chains to edgejoin's
 * /boot.ipxe. Everything runs inside network namespaces this test creates.
 */
import Database from "better-sqlite3";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  assertLabHost,
  dhcpMessages,
  dnsmasqNetbootConf,
  labFiles,
  netbootRequirements,
  otherDhcpRequirements,
  type SiteDhcp,
  NetLab,
  openSite,
  repoRoot,
  sha256,
  siteAddressing,
  tftpTransfers,
  httpExchanges,
  readPcap,
  waitFor,
} from "../helpers/netlab.js";

/** The example values the README's DHCP section is written for. */
const readmeSite = { edgejoinAddress: "192.168.1.10", publicUrl: "http://192.168.1.10:8080" };

/** The first fenced block under `### <heading>` inside the README section on DHCP. */
function readmeBlock(heading: string): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("Pointing a site's DHCP at edgejoin"));
  if (!section) throw new Error('README.md has no section "## Pointing a site\'s DHCP at edgejoin"');
  const sub = section.split(/^### /m).find((s) => s.startsWith(heading));
  const block = sub && /^```[a-z]*\n([\s\S]*?)^```$/m.exec(sub);
  if (!block) throw new Error(`README.md's DHCP section has no fenced block under "### ${heading}"`);
  return block[1]!;
}

describe("site DHCP configuration in the README", () => {
  it("README's dnsmasq example → exactly the netboot lines the lab's dnsmasq runs", () => {
    expect(readmeBlock("dnsmasq")).toBe(dnsmasqNetbootConf(readmeSite));
  });
});

describe("lab host check", () => {
  it("a missing tool → one error naming the Debian packages to install", () => {
    const missing = [
      { what: "the `qemu-system-x86_64` command", pkg: "qemu-system-x86", check: () => false },
      { what: "/usr/share/OVMF/OVMF_CODE_4M.fd", pkg: "ovmf", check: () => false },
      { what: "/usr/share/OVMF/OVMF_VARS_4M.fd", pkg: "ovmf", check: () => false },
      { what: "the `ip` command", pkg: "iproute2", check: () => true },
    ];
    expect(() => assertLabHost(missing)).toThrow(/missing the `qemu-system-x86_64` command, .*OVMF_CODE_4M\.fd.*: run `apt-get install qemu-system-x86 ovmf`/);
  });
});

/** The README's ISC dhcpd example, made whole for the lab's addresses (its range replaces the placeholder comment). */
function iscDhcpdConfFromReadme(): string {
  const placeholder = "  # ... your range, routers, domain-name-servers ...\n";
  const text = readmeBlock("ISC dhcpd");
  if (!text.includes(placeholder)) throw new Error(`README's ISC dhcpd example lost its placeholder line ${JSON.stringify(placeholder)}`);
  const [first, last] = siteAddressing.range;
  return toLabAddresses(text.replace(placeholder, `  range ${first} ${last};\n`));
}

/** The README's Kea client classes inside a whole kea-dhcp4 configuration for the lab. */
function keaConfFromReadme(): string {
  const [first, last] = siteAddressing.range;
  return [
    "{",
    '"Dhcp4": {',
    '"interfaces-config": { "interfaces": ["eth0"] },',
    '"lease-database": { "type": "memfile", "persist": false },',
    `${toLabAddresses(readmeBlock("Kea")).trimEnd()},`,
    `"subnet4": [{ "id": 1, "subnet": "10.77.0.0/24", "pools": [{ "pool": "${first} - ${last}" }] }]`,
    "}",
    "}",
    "",
  ].join("\n");
}

/** README example addresses → the lab's (edgejoin at 10.77.0.1 on 10.77.0.0/24). */
function toLabAddresses(text: string): string {
  return text.replaceAll("192.168.1.10", siteAddressing.edgejoin).replaceAll("192.168.1.0", "10.77.0.0");
}

describe("netboot with real firmware", () => {
  let lab: NetLab | undefined;
  afterAll(async () => {
    await lab?.close();
  });

  /** Boot one UEFI machine through `dhcp` and check every leg from power-on to the installer script. */
  async function netbootsThrough(dhcp: SiteDhcp, label: string, macSuffix: string) {
    assertLabHost([...netbootRequirements, ...(typeof dhcp === "object" ? otherDhcpRequirements[dhcp.server] : [])]);
    lab = await NetLab.open();
    const machine = { mac: `52:54:00:e7:00:${macSuffix}`, serial: `EJ-E2E-${randomBytes(3).toString("hex").toUpperCase()}`, uuid: randomUUID() };
    let passed = false;
    try {
      const site = await openSite(lab, { machines: 1, dhcp });
      const capture = await lab.capture(site.lan, site.taps[0]!, "tap0");
      const vm = await lab.machine({
        name: "uefi-1",
        ns: site.lan,
        tap: site.taps[0]!,
        mac: machine.mac,
        firmware: "uefi",
        smbios: { serial: machine.serial, uuid: machine.uuid, manufacturer: "edgejoin lab", product: "e2e netboot" },
      });
      const log = () => site.edgejoin.logLines();
      const deadProcess = () => site.edgejoin.process.death() ?? vm.process.death() ?? site.dhcpServer?.death();

      // The install script names the cluster's kernel: iPXE asking for it proves it ran that script.
      const kernelPath = "/artifacts/ubuntu/casper/vmlinuz";
      const kernelFetch = await waitFor(
        `${vm.name} to run the installer script (GET ${kernelPath})`,
        () => {
          const packets = readPcap(capture.file);
          const binaries = tftpTransfers(packets).filter((t) => t.clientMac === machine.mac && t.complete);
          if (binaries.length > 1)
            throw new Error(
              `boot loop: ${vm.name} fetched an iPXE binary ${binaries.length} times; the site's DHCP server must hand iPXE (user-class iPXE) the /boot.ipxe URL`,
            );
          return httpExchanges(packets, siteAddressing.httpPort).find((x) => x.clientMac === machine.mac && x.target === kernelPath);
        },
        {
          timeoutMs: 120_000,
          intervalMs: 500,
          failIf: deadProcess,
        },
      );
      lab.timeline.mark(`${vm.name}: GET ${kernelPath} (installer script ran)`, kernelFetch.at);
      await vm.stop();
      const packets = await capture.stop();

      // DHCP: firmware (no user-class, arch 7) → snponly.efi from edgejoin; iPXE (user-class iPXE) → /boot.ipxe.
      const dhcpSeen = dhcpMessages(packets).filter((m) => m.chaddr === machine.mac);
      const firmwareRequest = dhcpSeen.find((m) => m.fromClient && m.userClass === undefined);
      expect(firmwareRequest?.clientArch, "firmware's DHCP option 93").toBe(7);
      const acks = dhcpSeen.filter((m) => !m.fromClient && m.type === 5);
      const firmwareAck = acks[0];
      expect(firmwareAck?.bootFile, "boot file the site's DHCP server gave the firmware").toBe("snponly.efi");
      expect(firmwareAck?.siaddr, "next-server the site's DHCP server gave the firmware").toBe(siteAddressing.edgejoin);
      const ipxeRequest = dhcpSeen.find((m) => m.fromClient && m.userClass === "iPXE");
      expect(ipxeRequest, "a DHCP request from iPXE (user-class iPXE)").toBeDefined();
      const ipxeAck = acks.find((m) => m.at > ipxeRequest!.at);
      expect(ipxeAck?.bootFile, "boot file the site's DHCP server gave iPXE (the loop breaker)").toBe(`${site.publicUrl}/boot.ipxe`);
      lab.timeline.mark(`${vm.name}: firmware DHCP discover`, firmwareRequest!.at);
      lab.timeline.mark(`${vm.name}: firmware DHCP ack (snponly.efi)`, firmwareAck!.at);
      lab.timeline.mark(`${vm.name}: iPXE DHCP ack (/boot.ipxe)`, ipxeAck!.at);

      // TFTP: what went over the wire, reassembled, equals Debian's snponly.efi byte for byte.
      const expected = readFileSync(join(labFiles.ipxeDir, "snponly.efi"));
      const transfers = tftpTransfers(packets).filter((t) => t.clientMac === machine.mac && t.file === "snponly.efi");
      const full = transfers.find((t) => t.complete);
      // One iPXE binary per power-on: a second would mean iPXE was handed the binary again (a boot loop).
      expect(
        tftpTransfers(packets)
          .filter((t) => t.clientMac === machine.mac && t.complete)
          .map((t) => t.file),
      ).toEqual(["snponly.efi"]);
      expect(
        full,
        `a complete TFTP transfer of snponly.efi (saw ${transfers.length}: ${JSON.stringify(transfers.map((t) => ({ complete: t.complete, bytes: t.data.length, error: t.error })))})`,
      ).toBeDefined();
      expect(full!.server).toBe(siteAddressing.edgejoin);
      expect(full!.data.length).toBe(expected.length);
      expect(sha256(full!.data)).toBe(sha256(expected));
      lab.timeline.mark(`${vm.name}: TFTP snponly.efi started`, full!.startedAt);
      lab.timeline.mark(`${vm.name}: TFTP snponly.efi done (${full!.data.length} bytes)`, full!.endedAt);
      // edgejoin's own account of the transfer agrees on the size.
      const served = log().filter((l) => l.file === "snponly.efi" && typeof l.bytes === "number" && String(l.client).startsWith(`${firmwareAck!.yiaddr}:`));
      expect(
        served.map((l) => l.bytes),
        `bytes in edgejoin's log of snponly.efi transfers to ${firmwareAck!.yiaddr}`,
      ).toContain(expected.length);

      // HTTP, read back from the capture: the bare chain, then the identified request answered with the installer.
      const http = httpExchanges(packets, siteAddressing.httpPort).filter((x) => x.clientMac === machine.mac);
      const [chain, identified] = http.filter((x) => x.target.startsWith("/boot.ipxe"));
      expect(chain?.target).toBe("/boot.ipxe");
      expect(chain?.status).toBe(200);
      expect(chain?.body.toString()).toMatch(/^#!ipxe\n/);
      expect(chain?.body.toString()).toContain(`\nimgfetch --name identified ${site.publicUrl}/boot.ipxe?mac=\${net0/mac}&uuid=\${uuid}&`);
      const query = new URLSearchParams(identified?.target.split("?")[1] ?? "");
      expect(Object.fromEntries(query)).toMatchObject({ mac: machine.mac, uuid: machine.uuid, serial: machine.serial, arch: "x86_64", platform: "efi" });
      expect(identified?.status).toBe(200);
      const installer = identified?.body.toString() ?? "";
      expect(installer).toContain(`echo edgejoin: installing ${machine.mac} for cluster default\n`);
      expect(installer).toContain(`kernel ${site.publicUrl}${kernelPath} `);
      expect(installer).toContain(` ds=nocloud-net;s=${site.publicUrl}/cloud-init/${machine.mac}/ `);
      expect(vm.serial()).toContain(`edgejoin: installing ${machine.mac} for cluster default`);
      // edgejoin's request log saw the same three requests.
      const requests = log()
        .filter((l) => l.msg === "request")
        .map((l) => `${String(l.method)} ${String(l.path)} ${String(l.status)}`);
      expect(requests.filter((r) => r === "GET /boot.ipxe 200").length, `edgejoin's request log: ${requests.join(", ")}`).toBeGreaterThanOrEqual(2);
      expect(
        requests.some((r) => r.startsWith(`GET ${kernelPath} `)),
        `edgejoin's request log: ${requests.join(", ")}`,
      ).toBe(true);
      lab.timeline.mark(`${vm.name}: GET /boot.ipxe (chain)`, chain!.at);
      lab.timeline.mark(`${vm.name}: GET /boot.ipxe?mac=… (installer script)`, identified!.at);

      // The machine as edgejoin stored it: discovered, with the identity QEMU was given.
      const db = new Database(site.edgejoin.dbFile, { readonly: true, fileMustExist: true });
      try {
        const row = db.prepare("select mac, serial, uuid, state, platform, arch from machines where mac = ?").get(machine.mac);
        expect(row).toEqual({ mac: machine.mac, serial: machine.serial, uuid: machine.uuid, state: "discovered", platform: "efi", arch: "x86_64" });
      } finally {
        db.close();
      }
      passed = true;
    } finally {
      const timeline = lab.timeline.format();
      if (!passed) console.error(`netboot lab (${label}): logs, serial console and capture kept in ${lab.keep(`netboot-${label}`)}\n${timeline}`);
      else console.info(`netboot lab (${label}) timeline:\n${timeline}`);
      await lab.close();
    }
  }

  it("UEFI machine PXE-boots via the site's dnsmasq (README config) → snponly.efi byte-exact over TFTP, iPXE chains to /boot.ipxe, stored as discovered, served the installer", async () => {
    await netbootsThrough("netboot", "dnsmasq", "01");
  }, 180_000);

  it("UEFI machine PXE-boots via ISC dhcpd configured from the README → same boot, no loop", async () => {
    await netbootsThrough({ server: "isc-dhcpd", conf: iscDhcpdConfFromReadme() }, "isc-dhcpd", "02");
  }, 180_000);

  it("UEFI machine PXE-boots via Kea configured from the README → same boot, no loop", async () => {
    await netbootsThrough({ server: "kea", conf: keaConfFromReadme() }, "kea", "03");
  }, 180_000);
});
