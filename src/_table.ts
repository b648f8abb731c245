/**
 * Aligned text tables for the `ipc` command, coloured on a terminal. Internal.
 *
 * @module
 */

const CODES = { bold: 1, red: 31, green: 32, yellow: 33 } as const;
// deno-lint-ignore no-control-regex
const ESCAPES = /\x1b\[\d+m/g;

/** `text` in a colour or bold when `color` is on, else as it is. */
export function paint(text: string, style: keyof typeof CODES, color: boolean): string {
  return color ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text;
}

/** Columns padded to their widest cell (colour codes do not count), header in bold. */
export function table(header: string[], rows: string[][], color: boolean): string {
  const width = (cell: string) => cell.replace(ESCAPES, "").length;
  const widths = header.map((title, column) =>
    Math.max(width(title), ...rows.map((row) => width(row[column] ?? "")))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) =>
      column === cells.length - 1 ? cell : cell + " ".repeat(widths[column]! - width(cell))
    ).join("  ");
  return [paint(line(header), "bold", color), ...rows.map(line)].join("\n");
}
