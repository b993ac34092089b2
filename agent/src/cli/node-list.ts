// `corolistener -l`: the node list as a table or JSON (pure formatting, tested).
import { formatDbHealth, type DbNodeHealth } from "../effects/db/health.ts";

/**
 * `db`: the node's database state, when the daemon runs with a database section. `dbEligible`: may
 * its database make it master (absent = not judged); `dbReason`: why not.
 */
export type NodeListRow = { id: number; ip: string; status: string; master: boolean; prio: number; db?: DbNodeHealth; dbEligible?: boolean; dbReason?: string };

const COLUMNS: Array<[string, (r: NodeListRow) => string]> = [
  ["Id", (r) => String(r.id)],
  ["Ip", (r) => r.ip],
  ["Status", (r) => r.status],
  ["Master/Slave", (r) => (r.master ? "M" : "S")],
  ["Priority", (r) => String(r.prio)],
];

/** Left-aligned last column: the database state is free text (role, replication, lag or error). */
const DB_COLUMN: [string, (r: NodeListRow) => string] = ["Database", (r) => formatDbHealth(r.db)];

/**
 * Right-aligned columns, like the classic corolistener output; a Database column when known. Below
 * the table, the nodes whose database keeps them from being master, each with the reason.
 */
export function renderNodeList(rows: NodeListRow[]): string {
  const widths = COLUMNS.map(([title, get]) => Math.max(title.length, ...rows.map((r) => get(r).length)));
  const withDb = rows.some((r) => r.db);
  const line = (cells: string[], db?: string) => cells.map((c, i) => c.padStart(widths[i]! + 2)).join("  ") + (withDb ? `    ${db}`.trimEnd() : "");
  const table = [line(COLUMNS.map(([t]) => t), DB_COLUMN[0]), ...rows.map((r) => line(COLUMNS.map(([, get]) => get(r)), DB_COLUMN[1](r)))];
  const ineligible = rows.filter((r) => r.dbEligible === false);
  const reasons = ineligible.length ? ["", "Not eligible as master:", ...ineligible.map((r) => `  n${r.id}: ${r.dbReason ?? "no reason given"}`)] : [];
  return [...table, ...reasons].join("\n") + "\n";
}
