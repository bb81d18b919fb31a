/**
 * HTTP clients for the neighbour tests: one per source address on loopback (127.0.0.1 plays the
 * real machines and the admin, 127.0.0.2 the neighbour). Plain HTTP for iPXE, seed and admin
 * routes; the node API (`/api/v1/enroll`, `/api/v1/node/*`) goes to the server's node URL,
 * trusting its CA, so the switch to HTTPS lives in one place (`ServerRun.nodeUrl`).
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { ServerRun } from "../helpers/server-process.js";
import { agentFilesOf } from "../quorum/harness.js";

/** One answer: status, headers, body text, and the body as JSON when it is. */
export type Answer = { status: number; text: string; headers: http.IncomingHttpHeaders; json: () => any };

/** A client bound to `localAddress`, talking to `server`. */
export class LoopbackClient {
  readonly #ca: () => string;

  constructor(
    private readonly server: ServerRun,
    readonly localAddress: string,
    private readonly adminToken?: string,
  ) {
    let ca: string | undefined;
    this.#ca = () => (ca ??= readFileSync(server.caFile, "utf8"));
  }

  /** A request to `path`: node API paths go to the node URL, the rest to the plain HTTP base. */
  request(method: string, path: string, o: { body?: unknown; headers?: Record<string, string>; admin?: boolean } = {}): Promise<Answer> {
    const node = path.startsWith("/api/v1/enroll") || path.startsWith("/api/v1/node/");
    const url = new URL(path, node ? this.server.nodeUrl : this.server.url);
    const body = o.body === undefined ? undefined : typeof o.body === "string" ? o.body : JSON.stringify(o.body);
    const headers: Record<string, string> = {
      ...(body !== undefined && typeof o.body !== "string" ? { "content-type": "application/json" } : {}),
      ...(o.admin && this.adminToken ? { authorization: `Bearer ${this.adminToken}` } : {}),
      ...o.headers,
    };
    return new Promise((resolve, reject) => {
      const options = { method, headers, localAddress: this.localAddress, timeout: 15_000 };
      const req = url.protocol === "https:" ? https.request(url, { ...options, ca: this.#ca() }, collect) : http.request(url, options, collect);
      function collect(res: http.IncomingMessage) {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, text, headers: res.headers, json: () => JSON.parse(text) });
        });
        res.on("error", reject);
      }
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  get(path: string, o: { headers?: Record<string, string>; admin?: boolean } = {}) {
    return this.request("GET", path, o);
  }

  post(path: string, body: unknown, o: { headers?: Record<string, string>; admin?: boolean } = {}) {
    return this.request("POST", path, { ...o, body });
  }

  /** The bootstrap token the seed's user-data carries for `mac`, as a machine (or a neighbour) reads it. */
  async seedToken(mac: string): Promise<string> {
    const ud = await this.get(`/cloud-init/${mac}/user-data`);
    if (ud.status !== 200) throw new Error(`user-data for ${mac}: ${ud.status} ${ud.text.slice(0, 200)}`);
    return agentFilesOf(ud.text).token;
  }

  /** Seed fetch then enroll with only `{token, mac}` (what the neighbour sends); any extra fields merged in. */
  async enrollAs(mac: string, extra: Record<string, unknown> = {}): Promise<Answer> {
    return this.post("/api/v1/enroll", { token: await this.seedToken(mac), mac, ...extra });
  }
}
