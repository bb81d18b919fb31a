/** IPv4 source networks, as auto-approve rules and clusters match them. Pure. */

function ipv4ToInt(a: string): number | undefined {
  const p = a.split(".");
  if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return undefined;
  return p.reduce((acc, x) => (acc << 8) + Number(x), 0) >>> 0;
}

/** True for `a.b.c.d/n` with octets up to 255 and n up to 32. */
export function isIpv4Cidr(v: string): boolean {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(v);
  return !!m && ipv4ToInt(m[1]!) !== undefined && Number(m[2]) <= 32;
}

/** The prefix length of a CIDR (32 for a bare address). */
export function cidrBits(cidr: string): number {
  return Number(cidr.split("/")[1] ?? "32");
}

/** IPv4 CIDR membership; IPv6 and malformed input never match (an IPv4-mapped IPv6 address counts as IPv4). */
export function ipv4InCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split("/");
  const bits = Number(bitsText ?? "32");
  const a = ipv4ToInt(ip.replace(/^::ffff:/, ""));
  const b = ipv4ToInt(base ?? "");
  if (a === undefined || b === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (a & mask) === (b & mask);
}
