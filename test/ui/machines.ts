/**
 * Machines for console tests against a real edgejoin process: each fetches its seed over HTTP as
 * cloud-init does, takes the bootstrap token (and, where the seed carries them, the node API's
 * https URL and the CA to pin) from user-data, and enrolls as the agent would.
 */
import { request as httpsRequest } from "node:https";
import { parse } from "yaml";

/** The agent's files in a user-data (`write_files` entries, by base name), wherever the template nests them. */
export function agentFiles(userData: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (v: unknown) => {
    if (v === null || typeof v !== "object") return;
    const rec = v as Record<string, unknown>;
    if (typeof rec.path === "string" && typeof rec.content === "string") files[rec.path.split("/").pop()!] = rec.content;
    Object.values(rec).forEach(walk);
  };
  walk(parse(userData));
  return files;
}

/** One JSON request; over https it pins `ca` (the CA the seed carried), as the agent does. */
export function requestJson(
  method: string,
  url: string,
  o: { body?: unknown; ca?: string | undefined; bearer?: string } = {},
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (o.bearer) headers.authorization = `Bearer ${o.bearer}`;
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  if (!url.startsWith("https:")) {
    return fetch(url, { method, headers, body: payload }).then(async (r) => ({ status: r.status, text: await r.text() }));
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, ca: o.ca, headers, timeout: 10_000 }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** What one enrollment used: every secret in it, so a log test can look for each. */
export type Enrolled = { mac: string; nodeId: number; token: string; credential: string; nodeUrl: string; ca: string | undefined };

/** Boot (seed fetch) and enroll one machine; throws with the server's answer when it is refused. */
export async function enrollMachine(httpUrl: string, mac: string, facts: { serial: string; product: string }): Promise<Enrolled> {
  const seed = await fetch(`${httpUrl}/cloud-init/${mac}/user-data`);
  if (seed.status !== 200) throw new Error(`user-data for ${mac}: ${seed.status}`);
  const files = agentFiles(await seed.text());
  const token = files["bootstrap-token"]?.trim();
  if (!token) throw new Error(`user-data for ${mac} carries no bootstrap token`);
  const nodeUrl = files["node-url"]?.trim() || httpUrl;
  const ca = files["ca.pem"];
  const res = await requestJson("POST", `${nodeUrl}/api/v1/enroll`, {
    body: { token, mac, serial: facts.serial, ip: "127.0.0.1", arch: "x86_64", facts: { manufacturer: "QEMU", product: facts.product } },
    ca,
  });
  if (res.status !== 201) throw new Error(`enroll ${mac}: ${res.status} ${res.text.slice(0, 300)}`);
  const body = JSON.parse(res.text) as { node_id: number; credential: string };
  return { mac, nodeId: body.node_id, token, credential: body.credential, nodeUrl, ca };
}

/** A node API call with the machine's credential, as its agent makes it. */
export function nodeCall(e: Enrolled, method: string, path: string, body?: unknown) {
  return requestJson(method, `${e.nodeUrl}${path}`, { body, ca: e.ca, bearer: e.credential });
}
