import { useState, type ReactNode } from "react";
import type { NodeStatus } from "./api.ts";
import { ApiError } from "./api.ts";

export const STATUS_LABEL: Record<NodeStatus, string> = {
  leader: "Leader (master)",
  member: "Member",
  network_isolation: "Network isolation",
  storage_isolation: "Storage isolation",
  full_failure: "Failure",
  excluded: "Excluded",
  network_unstable: "Network unstable",
  unknown: "Unknown",
  offline: "Offline",
};

export function StatusBadge({ status }: { status: NodeStatus }) {
  return <span className={`badge st-${status}`}>{STATUS_LABEL[status]}</span>;
}

export function ErrorBox({ error }: { error: string | null }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

/** Runs a write; shows its error (or a short "Saved") next to the control. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = async (f: () => Promise<unknown>, ok = "Saved") => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await f();
      setDone(ok);
      return true;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  const feedback: ReactNode = (
    <span aria-live="polite" className="feedback">
      {error ? <span className="error">{error}</span> : done ? <span className="ok">{done}</span> : null}
    </span>
  );
  return { busy, run, feedback, error };
}

export const fmtMs = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);
export const fmtTime = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "—");
