/** @jsxImportSource hono/jsx */
/** /docs: the OpenAPI document as one readable page, grouped by who calls each operation. No script. */

type Json = Record<string, unknown>;
type Operation = { method: string; path: string; op: Json };

const order = ["admin", "node", "machines and monitoring", "console"];

function operations(doc: Json): Operation[] {
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(methods)) out.push({ method: method.toUpperCase(), path, op });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}

function Op(props: { o: Operation }) {
  const { op } = props.o;
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = (op.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined)?.content;
  const responses = Object.entries(op.responses as Record<string, { description?: string }>);
  const security = (op.security as Record<string, unknown>[] | undefined)?.flatMap((s) => Object.keys(s)) ?? [];
  return (
    <details id={String(op.operationId)}>
      <summary>
        <code class="method">{props.o.method}</code> <code>{props.o.path}</code> — {String(op.summary)}
      </summary>
      <p>Authentication: {security.length ? security.join(", ") : "none"}</p>
      {params.length > 0 ? (
        <table>
          <caption>Parameters</caption>
          <thead>
            <tr>
              <th scope="col">name</th>
              <th scope="col">in</th>
              <th scope="col">schema</th>
            </tr>
          </thead>
          <tbody>
            {params.map((p) => (
              <tr>
                <td>
                  <code>{String(p.name)}</code>
                  {p.required ? " (required)" : ""}
                </td>
                <td>{String(p.in)}</td>
                <td>
                  <code>{JSON.stringify(p.schema)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {body
        ? Object.entries(body).map(([type, b]) => (
            <>
              <p>
                Body (<code>{type}</code>):
              </p>
              <pre>{JSON.stringify(b.schema, null, 2)}</pre>
            </>
          ))
        : null}
      <ul>
        {responses.map(([status, r]) => (
          <li>
            <strong>{status}</strong> {r.description ?? ""}
          </li>
        ))}
      </ul>
    </details>
  );
}

/** The page. */
export function DocsPage(props: { doc: Json }) {
  const ops = operations(props.doc);
  const info = props.doc.info as { title: string; version: string; description: string };
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${info.title} ${info.version} API`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/ui/static/console.css" />
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/ui">
            edgejoin
          </a>
          <nav aria-label="Main">
            <a href="/openapi.json">openapi.json</a>
          </nav>
        </header>
        <main>
          <h1>
            {info.title} {info.version} API
          </h1>
          <p>{info.description}</p>
          <p>
            Errors are JSON <code>{"{error, message, requestId}"}</code> with a stable <code>error</code> code. The machine-readable description is{" "}
            <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).
          </p>
          {order.map((tag) => (
            <section aria-labelledby={`tag-${tag.replace(/\W/g, "-")}`}>
              <h2 id={`tag-${tag.replace(/\W/g, "-")}`}>{tag}</h2>
              {ops
                .filter((o) => (o.op.tags as string[])[0] === tag)
                .map((o) => (
                  <Op o={o} />
                ))}
            </section>
          ))}
        </main>
      </body>
    </html>
  );
}
