/**
 * Kubernetes node names. A node name is fixed when the machine gets its seat and kept: k3s
 * remembers a node's password by name, so a renamed node could not rejoin.
 */

/** An RFC 1123 label: what a k3s node name, a hostname and a cluster name must be here. */
export const dnsLabelPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Placeholders a cluster's hostname pattern may use. */
export const hostnamePlaceholders = ["{mac}", "{id}", "{cluster}"] as const;

/** Expand a hostname pattern: `{mac}` is the MAC's 12 hex digits, `{id}` the machine id, `{cluster}` the cluster name. */
export function expandHostnamePattern(pattern: string, machine: { id: number; mac: string }, clusterName: string): string {
  return pattern
    .replaceAll("{mac}", machine.mac.replaceAll(":", "").toLowerCase())
    .replaceAll("{id}", String(machine.id))
    .replaceAll("{cluster}", clusterName);
}

/** Why a hostname pattern cannot be used, or undefined when it always yields a DNS label. */
export function hostnamePatternProblem(pattern: string): string | undefined {
  const rest = hostnamePlaceholders.reduce((p, ph) => p.replaceAll(ph, ""), pattern);
  if (!/^[a-z0-9-]*$/.test(rest)) return "hostname_pattern may hold lower-case letters, digits, '-' and the placeholders {mac}, {id}, {cluster}";
  if (!pattern.includes("{mac}") && !pattern.includes("{id}")) return "hostname_pattern must contain {mac} or {id} so every machine gets its own name";
  // The longest expansion: 12 MAC digits, a 10-digit id, a 63-character cluster name.
  const longest = pattern.replaceAll("{mac}", "a".repeat(12)).replaceAll("{id}", "9".repeat(10)).replaceAll("{cluster}", "c".repeat(63));
  const shortest = pattern.replaceAll("{mac}", "a".repeat(12)).replaceAll("{id}", "1").replaceAll("{cluster}", "c");
  if (!dnsLabelPattern.test(shortest)) return "hostname_pattern must expand to a DNS label: start and end with a letter or digit";
  if (longest.length > 63 && pattern.includes("{cluster}")) return "hostname_pattern with {cluster} may exceed 63 characters; drop {cluster} or shorten the pattern";
  if (longest.length > 63) return "hostname_pattern expands to more than 63 characters";
  return undefined;
}

/**
 * The node name a machine gets with its seat: its own hostname when that is a DNS label no other
 * seat holder of the cluster uses, else the cluster's hostname pattern.
 */
export function chooseNodeName(
  machine: { id: number; mac: string; hostname: string | null },
  cluster: { name: string; hostnamePattern: string },
  isNameTaken: (name: string) => boolean,
): string {
  const own = machine.hostname?.toLowerCase();
  if (own && dnsLabelPattern.test(own) && !isNameTaken(own)) return own;
  return expandHostnamePattern(cluster.hostnamePattern, machine, cluster.name);
}
