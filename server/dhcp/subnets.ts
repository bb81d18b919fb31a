/** Which subnets ProxyDHCP answers on, from the host's interfaces (as `os.networkInterfaces()` lists them). */
import type { NetworkInterfaceInfo } from "node:os";
import type { Subnet } from "./proxy.js";

/**
 * The IPv4 subnets of the named interfaces (all non-internal ones when `names` is undefined), or a
 * one-line reason when a named interface is missing or has no IPv4 address.
 */
export function subnetsOf(names: readonly string[] | undefined, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): Subnet[] | string {
  const subnets: Subnet[] = [];
  const wanted = names ?? Object.keys(interfaces);
  for (const name of wanted) {
    const addrs = interfaces[name];
    if (addrs === undefined) return `EDGEJOIN_PROXY_DHCP_INTERFACES: this host has no interface ${name} (it has ${Object.keys(interfaces).join(", ")})`;
    const v4 = addrs.filter((a) => a.family === "IPv4" && (names !== undefined || !a.internal));
    if (v4.length === 0 && names !== undefined) return `EDGEJOIN_PROXY_DHCP_INTERFACES: interface ${name} has no IPv4 address`;
    for (const a of v4) {
      const prefix = Number((a.cidr ?? "/32").split("/")[1]);
      subnets.push({ address: a.address, prefix });
    }
  }
  if (subnets.length === 0) return "EDGEJOIN_PROXY_DHCP=on: this host has no non-loopback IPv4 address to answer PXE clients on";
  return subnets;
}

/**
 * The address answered to a broadcast that does not say where it came from: the public URL's host
 * when it is one of ours (machines must reach it anyway), else the first subnet's.
 */
export function defaultAddress(publicUrl: string, subnets: readonly Subnet[]): string {
  const host = new URL(publicUrl).hostname;
  return subnets.find((s) => s.address === host)?.address ?? subnets[0]!.address;
}
