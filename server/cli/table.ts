/**
 * How admin commands print: an aligned table on a terminal (plain columns separated by two
 * spaces, so `grep` and `awk` still work), or the JSON the server answered with `--json`.
 */

/** One column: its header and how to get the cell from a row. */
export type Column<T> = { header: string; value: (row: T) => unknown };

/** A cell as text: null and undefined print as `-`, one line, control characters removed. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === "") return "-";
  const text = typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  // A hostname or detail a machine sent must not move the cursor or break the table.
  return text.replace(/[\x00-\x1f\x7f]+/g, " ");
}

/** The rows as aligned text, one line per row, header first; the last column is not padded. */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => cell(c.value(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return `${cells
    .map((line) =>
      line
        .map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}

/** `key: value` lines, keys aligned, for one object (`show` commands). */
export function formatFields(fields: readonly [string, unknown][]): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return `${fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${cell(v)}`).join("\n")}\n`;
}

/** Write `value` as indented JSON (`--json`). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A listing: JSON with `--json` (the server's plural key), else the table, or a line saying it is empty. */
export function printList<T>(opts: { json?: boolean }, key: string, rows: readonly T[], columns: readonly Column<T>[], empty: string): void {
  if (opts.json) {
    printJson({ [key]: rows });
    return;
  }
  process.stdout.write(rows.length === 0 ? `${empty}\n` : formatTable(rows, columns));
}

/** ISO 8601 as `2026-11-25 12:00:03` (UTC, as the server stores it): short enough for a table. */
export function shortTime(iso: unknown): string | null {
  if (typeof iso !== "string") return null;
  return iso.replace("T", " ").replace(/\.\d{3}Z$/, "Z");
}
