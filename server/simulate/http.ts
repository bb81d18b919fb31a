/**
 * One HTTP(S) exchange on its own connection, as each curl call of the real agent and each iPXE
 * fetch is: no keep-alive reuse. HTTPS trusts only the CA the caller names (the PEM edgejoin put
 * in the machine's user-data), like the agent's `curl --cacert`.
 */
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";

/** An answer, read whole. */
export type HttpAnswer = { status: number; headers: IncomingHttpHeaders; text: string };

/** Request options: headers, a JSON body, the CA to trust for https, and a timeout. */
export type HttpOptions = { headers?: Record<string, string>; json?: unknown; ca?: string | undefined; timeoutMs?: number; localAddress?: string | undefined };

/** Send one request and read the whole answer; rejects on a network error or timeout. */
export function exchange(method: string, url: string, o: HttpOptions = {}): Promise<HttpAnswer> {
  const body = o.json === undefined ? undefined : JSON.stringify(o.json);
  const headers = { ...(body === undefined ? {} : { "content-type": "application/json" }), ...o.headers };
  const secure = url.startsWith("https:");
  const send = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        headers,
        agent: false,
        timeout: o.timeoutMs ?? 30_000,
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        ...(secure && o.ca ? { ca: o.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error(`${method} ${url} timed out`), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(body);
  });
}
