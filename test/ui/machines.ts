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

function postJson(url: string, body: unknown, ca?: string): Promise<{ status: number; text: string }> {
  if (!url.startsWith("https:")) {
    return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(async (r) => ({
      status: r.status,
      text: await r.text(),
    }));
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: "POST", ca, headers: { "content-type": "application/json" }, timeout: 10_000 }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

/** What one enrollment used: every secret in it, so a log test can look for each. */
export type Enrolled = { mac: string; nodeId: number; token: string; credential: string };

/** Boot (seed fetch) and enroll one machine; throws with the server's answer when it is refused. */
export async function enrollMachine(httpUrl: string, mac: string, facts: { serial: string; product: string }): Promise<Enrolled> {
  const seed = await fetch(`${httpUrl}/cloud-init/${mac}/user-data`);
  if (seed.status !== 200) throw new Error(`user-data for ${mac}: ${seed.status}`);
  const files = agentFiles(await seed.text());
  const token = files["bootstrap-token"]?.trim();
  if (!token) throw new Error(`user-data for ${mac} carries no bootstrap token`);
  const nodeUrl = files["node-url"]?.trim() || httpUrl;
  const res = await postJson(
    `${nodeUrl}/api/v1/enroll`,
    { token, mac, serial: facts.serial, ip: "127.0.0.1", arch: "x86_64", facts: { manufacturer: "QEMU", product: facts.product } },
    files["ca.pem"],
  );
  if (res.status !== 201) throw new Error(`enroll ${mac}: ${res.status} ${res.text.slice(0, 300)}`);
  const body = JSON.parse(res.text) as { node_id: number; credential: string };
  return { mac, nodeId: body.node_id, token, credential: body.credential };
}
