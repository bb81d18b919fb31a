/**
 * k3s `config.yaml` for each seat, built as data and serialized with the `yaml` library, never
 * pasted together as text. Servers get the server token and the agent token; agents only ever
 * get the agent token. Once the init server reported its CA hash, joiners get the secure token
 * form `K10<hash>::<user>:<secret>` and so pin the cluster CA.
 */
import { stringify } from "yaml";
import { k3sConfigProblems, type K3sCommand } from "./k3s-flags.js";

/** Which config a seat is rendered with; a returning init server renders as `server`. */
export type K3sConfigForm = "init" | "server" | "agent";

/** Everything a rendered config depends on. */
export type K3sConfigInput = {
  form: K3sConfigForm;
  nodeName: string;
  /** The machine's address as it last reported it; added to a server's certificate. */
  nodeIp: string | null;
  /** The cluster's VIP or DNS name, if it has one. */
  registrationAddress: string | null;
  /** Where a joiner connects: the registration address, else a ready server's address. */
  joinHost: string | null;
  serverToken: string;
  agentToken: string;
  /** Hex SHA-256 of the cluster CA certificate, once the init server reported it. */
  caHash: string | null;
  labels: Record<string, string>;
  taints: string[];
};

/** The supervisor port every k3s server listens on for joins. */
export const k3sSupervisorPort = 6443;

/** `K10<ca-hash>::<user>:<secret>`: the token form that makes the joiner verify the cluster CA. */
export function secureToken(caHash: string, user: "server" | "node", secret: string): string {
  return `K10${caHash}::${user}:${secret}`;
}

/** `https://HOST:6443`, with an IPv6 address in brackets. */
export function serverUrl(host: string): string {
  return `https://${host.includes(":") ? `[${host}]` : host}:${k3sSupervisorPort}`;
}

/** The k3s command a form runs as (INSTALL_K3S_EXEC). */
export function k3sCommandFor(form: K3sConfigForm): K3sCommand {
  return form === "agent" ? "agent" : "server";
}

/** Thrown when a config would carry a key k3s does not know or a value of the wrong type: a bug, never shipped. */
export class K3sConfigError extends Error {}

/** The config as data: keys are k3s flag names, values have the flags' types. */
export function buildK3sConfig(input: K3sConfigInput): Record<string, unknown> {
  const labels = Object.entries(input.labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  const tlsSan = [...new Set([input.registrationAddress, input.nodeIp].filter((v): v is string => !!v))];
  const withList = (key: string, values: string[]) => (values.length > 0 ? { [key]: values } : {});
  const joinUrl = () => {
    if (!input.joinHost) throw new K3sConfigError(`a ${input.form} config needs a server to join`);
    return serverUrl(input.joinHost);
  };

  switch (input.form) {
    case "init":
      return {
        "cluster-init": true,
        token: input.serverToken,
        "agent-token": input.agentToken,
        ...withList("tls-san", tlsSan),
        "node-name": input.nodeName,
        ...withList("node-label", labels),
        ...withList("node-taint", input.taints),
      };
    case "server":
      return {
        server: joinUrl(),
        token: input.caHash ? secureToken(input.caHash, "server", input.serverToken) : input.serverToken,
        "agent-token": input.agentToken,
        ...withList("tls-san", tlsSan),
        "node-name": input.nodeName,
        ...withList("node-label", labels),
        ...withList("node-taint", input.taints),
      };
    case "agent":
      return {
        server: joinUrl(),
        token: input.caHash ? secureToken(input.caHash, "node", input.agentToken) : input.agentToken,
        "node-name": input.nodeName,
        ...withList("node-label", labels),
      };
  }
}

/** config.yaml text. Fails closed if any key is not a k3s flag for the form's command. */
export function renderK3sConfig(input: K3sConfigInput): string {
  const config = buildK3sConfig(input);
  const problems = k3sConfigProblems(k3sCommandFor(input.form), config);
  if (problems.length > 0) throw new K3sConfigError(problems.join("; "));
  // YAML 1.1 quoting: k3s reads config.yaml with a YAML 1.1 parser, where `yes`, `on` or `0755` are not strings.
  return stringify(config, { version: "1.1" });
}
