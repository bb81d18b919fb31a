/** @jsxImportSource hono/jsx */
/**
 * The console's page shell: one stylesheet and one script, both served from /ui/static (the
 * Content-Security-Policy allows nothing inline). hono/jsx escapes every interpolated value.
 */
import type { Child } from "hono/jsx";

/** Where the signed-in admin is: the nav, and the sign-out form that needs the CSRF token. */
export type Chrome = { tokenName: string; csrf: string };

/** A hidden CSRF field for a console form. */
export function Csrf(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

/** A full console page. `live` marks pages the script refreshes without a reload. */
export function Page(props: { title: string; chrome?: Chrome | undefined; live?: boolean; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · edgejoin`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/ui/static/console.css" />
        <script src="/ui/static/console.js" defer></script>
      </head>
      <body data-live={props.live ? "on" : undefined}>
        <header class="top">
          <a class="brand" href="/ui">
            edgejoin
          </a>
          {props.chrome ? (
            <nav aria-label="Main">
              <a href="/ui">Machines</a>
              <a href="/ui#clusters">Clusters</a>
              <a href="/docs">API</a>
              <form method="post" action="/ui/logout" class="inline">
                <Csrf token={props.chrome.csrf} />
                <button type="submit" class="link" title={`signed in as admin:${props.chrome.tokenName}`}>
                  Sign out ({props.chrome.tokenName})
                </button>
              </form>
            </nav>
          ) : null}
        </header>
        <main>{props.children}</main>
        <p class="status" id="live-status" role="status" aria-live="polite"></p>
      </body>
    </html>
  );
}

/** A state or health as a coloured badge with its word (colour is never the only signal). */
export function Badge(props: { value: string }) {
  return <span class={`badge b-${props.value.replace(/[^a-z_]/g, "")}`}>{props.value.replace(/_/g, " ")}</span>;
}

/** ISO time, shortened for a table, with the full value as a tooltip. */
export function When(props: { ms: number | null | undefined }) {
  if (props.ms === null || props.ms === undefined) return <span class="muted">—</span>;
  const iso = new Date(props.ms).toISOString();
  return (
    <time datetime={iso} title={iso}>
      {iso.slice(0, 19).replace("T", " ")}
    </time>
  );
}
