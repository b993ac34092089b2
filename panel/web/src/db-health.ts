// A node's database in words for the node cards and the node page (pure, unit-tested in
// panel/test/db-health.test.ts): role, replication, lag, what is wrong and whether it may be master.
import type { DbHealth } from "./api.ts";

export type DbTone = "good" | "warn" | "bad" | "muted";

export type DbSummary = {
  tone: DbTone;
  /** One line for a card, e.g. "Replica of n1 · running · lag 0 s". */
  line: string;
  role: string;
  replication: string;
  /** "lag 0 s"; null when it does not apply. */
  lag: string | null;
  /** What is wrong and what the cluster does about it; empty when nothing is. */
  problems: string[];
  /** null: not judged; else "yes" or "no — " and why not. */
  eligible: string | null;
};

type Node = { db: DbHealth | null; dbEligible: boolean | null; dbReason: string | null };

/** Seconds behind the primary, with a unit: "0 s", "5 min", "2.5 h". */
export function fmtLag(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

const ROLE: Record<string, string> = {
  primary: "Primary",
  replica: "Replica",
  off: "Replication off",
  "read-only": "Read-only",
  unknown: "Unknown",
};

const REPLICATION: Record<string, string> = {
  running: "running",
  connecting: "connecting",
  stopped: "stopped",
  error: "broken",
  "disk-full": "disk full",
  none: "not replicating",
};

/** A lag this large is worth a look (amber), not an error. */
const LAG_WARN_S = 60;

/** Reasons that mean the copy is damaged or away (red), as opposed to merely not taking part. */
const BAD_REASON = /diverg|unreachable|not reachable|broken|error|disk full|corrupt|re-?clon|rebuil|lost/i;

const capitalize = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);

/** "database diverged: being re-cloned from n2" -> "Diverged: being re-cloned from n2" (shown under "Database"). */
export function reasonText(reason: string): string {
  return capitalize(reason.trim().replace(/^(the )?database\s+(is\s+)?/i, ""));
}

const uncapitalize = (t: string) => (/^[A-Z][a-z]/.test(t) ? t.charAt(0).toLowerCase() + t.slice(1) : t);

export function describeDb(n: Node): DbSummary {
  const h = n.db;
  const problems: string[] = [];
  let tone: DbTone;
  let role: string;
  let replication: string;
  let lag: string | null = null;
  let line: string;
  if (!h) {
    tone = "muted";
    role = replication = "not read";
    line = "Not read yet";
  } else if (!h.reachable) {
    tone = "bad";
    role = "Unknown";
    replication = "unknown";
    line = "Unreachable";
    problems.push(`Unreachable: ${h.error ?? "no answer"}`);
  } else {
    role = ROLE[h.role] ?? capitalize(h.role);
    replication = REPLICATION[h.replication] ?? h.replication;
    const from = h.sourceName ?? h.source;
    const parts = [h.role === "replica" && from ? `${role} of ${from}` : role];
    if (h.replication !== "none") parts.push(replication);
    else if (h.role === "read-only") parts.push("not replicating");
    if (h.replication === "running") {
      lag = typeof h.lagSeconds === "number" ? `lag ${fmtLag(h.lagSeconds)}` : "lag unknown";
      parts.push(lag);
    }
    line = parts.join(" · ");
    if (h.replication === "error" || h.replication === "disk-full") {
      tone = "bad";
      problems.push(capitalize(h.error ?? (h.replication === "disk-full" ? "disk full" : "replication failed")));
    } else if (h.replication === "connecting" || h.replication === "stopped" || h.role === "read-only") {
      tone = "warn";
      if (h.error) problems.push(capitalize(h.error));
    } else if (h.role === "off" || h.role === "unknown") {
      tone = "muted";
    } else {
      tone = typeof h.lagSeconds === "number" && h.lagSeconds >= LAG_WARN_S ? "warn" : "good";
    }
  }
  let eligible: string | null = null;
  if (n.dbEligible === true) eligible = "yes";
  else if (n.dbEligible === false) {
    const why = n.dbReason ? reasonText(n.dbReason) : "";
    eligible = why ? `no — ${uncapitalize(why)}` : "no";
    // The reason says what the cluster does about it (e.g. "being re-cloned from n2"): it comes first,
    // the database's own error after it. An unreachable database is named once.
    const dup = h && !h.reachable && /unreachable|not reachable/i.test(why);
    if (dup) problems.splice(0, problems.length, `Unreachable: ${h.error ?? "no answer"}; not eligible as master`);
    else problems.unshift(why ? `${why}; not eligible as master` : "Not eligible as master");
    if (BAD_REASON.test(why)) tone = "bad";
    else if (tone === "good" || tone === "muted") tone = "warn";
  }
  return { tone, line, role, replication, lag, problems, eligible };
}
