// `corolistener -l`: the node list as a table or JSON (pure formatting, tested).

export type NodeListRow = { id: number; ip: string; status: string; master: boolean; prio: number };

const COLUMNS: Array<[string, (r: NodeListRow) => string]> = [
  ["Id", (r) => String(r.id)],
  ["Ip", (r) => r.ip],
  ["Status", (r) => r.status],
  ["Master/Slave", (r) => (r.master ? "M" : "S")],
  ["Priority", (r) => String(r.prio)],
];

/** Right-aligned columns, like the classic corolistener output. */
export function renderNodeList(rows: NodeListRow[]): string {
  const widths = COLUMNS.map(([title, get]) => Math.max(title.length, ...rows.map((r) => get(r).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]! + 2)).join("  ");
  return [line(COLUMNS.map(([t]) => t)), ...rows.map((r) => line(COLUMNS.map(([, get]) => get(r))))].join("\n") + "\n";
}
