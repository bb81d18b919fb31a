/**
 * The flags `k3s server` and `k3s agent` accept, from k3s's CLI reference (k3s-flags.json).
 * k3s skips an unknown config.yaml key with only a log line, so every key edgejoin emits is
 * checked against these lists, and every value against the flag's type.
 */
import flagLists from "./k3s-flags.json" with { type: "json" };

/** How a flag's value looks in config.yaml. `list` flags take a string or a list of strings. */
export type K3sFlagType = "bool" | "string" | "int" | "list";

/** The k3s command a config.yaml is read by. */
export type K3sCommand = "server" | "agent";

/** Flag name (without `--`) → type, per command. */
export const k3sFlags: Record<K3sCommand, Readonly<Record<string, K3sFlagType>>> = {
  server: flagLists.server as Record<string, K3sFlagType>,
  agent: flagLists.agent as Record<string, K3sFlagType>,
};

function hasType(value: unknown, type: K3sFlagType): boolean {
  switch (type) {
    case "bool":
      return typeof value === "boolean";
    case "int":
      return Number.isInteger(value);
    case "string":
      return typeof value === "string";
    case "list":
      return typeof value === "string" || (Array.isArray(value) && value.every((v) => typeof v === "string"));
  }
}

/** Every problem with a config object for `command`: unknown keys and values of the wrong type. */
export function k3sConfigProblems(command: K3sCommand, config: Record<string, unknown>): string[] {
  const flags = k3sFlags[command];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const type = flags[key];
    if (type === undefined) problems.push(`${key} is not a flag of k3s ${command}`);
    else if (!hasType(value, type)) problems.push(`${key} must be ${type === "list" ? "a string or a list of strings" : `a ${type}`} for k3s ${command}`);
  }
  return problems;
}
