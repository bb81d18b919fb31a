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
  return pattern.replaceAll("{mac}", machine.mac.replaceAll(":", "").toLowerCase()).replaceAll("{id}", String(machine.id)).replaceAll("{cluster}", clusterName);
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
  if (longest.length > 63 && pattern.includes("{cluster}"))
    return "hostname_pattern with {cluster} may exceed 63 characters; drop {cluster} or shorten the pattern";
  if (longest.length > 63) return "hostname_pattern expands to more than 63 characters";
  return undefined;
}

/** A machine as naming sees it: `hostname` is the name edgejoin gave it earlier, if any. */
export type NameableMachine = { id: number; mac: string; hostname: string | null };

/**
 * The one naming rule, used for the NoCloud `local-hostname`, the k3s node name and an admin's
 * choice alike: the name the machine already has, else the cluster's pattern, else
 * `node-<mac>`, each also with `-<id>` appended; the first that no other live machine of the
 * cluster holds. k3s keys a node's password by name, so two machines with one name would lock
 * each other out.
 */
export function chooseNodeName(
  machine: NameableMachine,
  cluster: { name: string; hostnamePattern: string } | undefined,
  isNameTaken: (name: string) => boolean,
): string {
  const fallback = `node-${machine.mac.replaceAll(":", "").toLowerCase()}`;
  const withId = (base: string) => `${base.slice(0, 62 - String(machine.id).length).replace(/-+$/, "")}-${machine.id}`;
  const own = machine.hostname?.toLowerCase();
  const expanded = cluster ? expandHostnamePattern(cluster.hostnamePattern, machine, cluster.name) : fallback;
  const candidates = [...(own ? [own] : []), expanded, withId(expanded), fallback, withId(fallback)].filter((n) => dnsLabelPattern.test(n));
  return candidates.find((n) => !isNameTaken(n)) ?? withId(fallback);
}
