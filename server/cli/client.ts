/**
 * The admin commands' one HTTP client: the running server's admin API at EDGEJOIN_URL with
 * EDGEJOIN_ADMIN_TOKEN. Every failure becomes a `CliError`, one line naming the problem; an
 * HTTP refusal carries the server's `error: message`.
 */

/** A failure the CLI reports as one line on stderr and a non-zero exit. */
export class CliError extends Error {
  constructor(
    message: string,
    /** 1: the server or the request failed; 2: the command line or the environment is wrong. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Query values; undefined ones are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** What the client needs from the environment; `fromEnv` reads it. */
export type ClientSettings = { baseUrl: string; token: string };

/** EDGEJOIN_URL (default http://127.0.0.1:8080) and EDGEJOIN_ADMIN_TOKEN (required). */
export function settingsFromEnv(env: Record<string, string | undefined> = process.env): ClientSettings {
  const token = env.EDGEJOIN_ADMIN_TOKEN;
  if (!token) throw new CliError("set EDGEJOIN_ADMIN_TOKEN to an admin token (the first start prints one; `edgejoin tokens create` makes more)", 2);
  const baseUrl = (env.EDGEJOIN_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+/.test(baseUrl))
    throw new CliError(`EDGEJOIN_URL must be the server's http:// address, e.g. http://192.168.1.10:8080 (got ${baseUrl})`, 2);
  return { baseUrl, token };
}

/** One admin API client; each call is one request. */
export class AdminClient {
  constructor(private readonly settings: ClientSettings) {}

  /** The server's address, as error messages name it. */
  get baseUrl(): string {
    return this.settings.baseUrl;
  }

  /** Send one request; resolves with the raw response when it succeeded (2xx), else throws CliError. */
  async send(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<Response> {
    const url = new URL(`${this.settings.baseUrl}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.settings.token}`,
          ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      });
    } catch (err) {
      const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach ${this.settings.baseUrl} (${cause?.code ?? cause?.message ?? (err as Error).message}); set EDGEJOIN_URL to the server's address`,
      );
    }
    if (!res.ok) {
      const answer = (await res.json().catch(() => ({}))) as { error?: unknown; message?: unknown };
      throw new CliError(`${res.status} ${String(answer.error ?? "error")}: ${String(answer.message ?? res.statusText)}`);
    }
    return res;
  }

  /** A JSON request; resolves with the parsed body. */
  async json<T = Record<string, unknown>>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    try {
      return (await res.json()) as T;
    } catch {
      throw new CliError(`${method} ${path} answered ${res.status} without JSON: is EDGEJOIN_URL an edgejoin server?`);
    }
  }

  /**
   * Every item of a paginated list (`{<key>: [...], next_cursor}`), following `next_cursor`.
   * A server without cursors answers one page, which is then the whole list.
   */
  async all<T>(path: string, key: string, query: Query = {}): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    // Pages of the server's default size; bounded: 10,000 pages is far beyond any site.
    for (let page = 0; page < 10_000; page++) {
      const body = await this.json<Record<string, unknown>>("GET", path, { query: { ...query, cursor } });
      const got = body[key];
      if (!Array.isArray(got)) throw new CliError(`GET ${path} answered without a ${key} list: is EDGEJOIN_URL an edgejoin server?`);
      items.push(...(got as T[]));
      const next = body.next_cursor;
      if (typeof next !== "string" || next === "") return items;
      cursor = next;
    }
    return items;
  }
}

/** The client for this process's environment. */
export function clientFromEnv(): AdminClient {
  return new AdminClient(settingsFromEnv());
}
