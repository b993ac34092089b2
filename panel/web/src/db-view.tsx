// A node's database problems as a red (or amber) box, on the node cards and the node page.
import type { DbSummary } from "./db-health.ts";

export function DbProblems({ summary, id }: { summary: DbSummary; id?: string }) {
  if (summary.problems.length === 0) return null;
  return (
    <ul className={`db-problems db-problems-${summary.tone === "bad" ? "bad" : "warn"}`} data-testid={id}>
      {summary.problems.map((p, i) => (
        <li key={i}>{p}</li>
      ))}
    </ul>
  );
}

/** What a saved change means, and what happens to a diverged copy (node page). */
export const ACK_HELP =
  "A change is saved (2xx) only once a majority of the database nodes has it; if not, the panel answers 503 and the change may not be kept. " +
  "A node whose database diverged is rebuilt from the primary automatically; what it discarded is kept in a file on that node and named in an incident.";
