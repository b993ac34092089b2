// The read gate: a new master's panel starts while its database may still be catching up (read
// only until the promotion finishes). Reads answered from it then could miss acknowledged writes,
// so until the local database has been seen writable once, the API answers 503. Asked at most
// every `everyMs`; once open it costs nothing.
import type { RequestHandler } from "express";
import { HttpError } from "./errors.ts";

export type GateState = "open" | "promoting" | "unknown";

export class ReadGate {
  private open = false;
  private last: GateState = "unknown";
  private checkedAt = -Infinity;
  private checking: Promise<void> | null = null;

  /** `readOnly`: is the local database read-only now (throws when it cannot be asked). */
  constructor(
    private readonly readOnly: () => Promise<boolean>,
    private readonly everyMs = 500,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * "unknown": the database did not answer. The request goes on: whatever it reads from the
   * database fails on its own (503 by errors.ts), and in-memory sessions keep working.
   */
  async state(): Promise<GateState> {
    if (this.open) return "open";
    if (!this.checking && this.now() - this.checkedAt >= this.everyMs) {
      this.checkedAt = this.now();
      this.checking = this.readOnly()
        .then(
          (ro) => void ((this.last = ro ? "promoting" : "open"), (this.open = !ro)),
          () => void (this.last = "unknown"),
        )
        .finally(() => (this.checking = null));
    }
    if (this.checking) await this.checking;
    return this.last;
  }
}

export const promoting = () => new HttpError(503, "the database is being promoted on this node; retry in a moment", undefined, { "Retry-After": "2" });

export function readGate(gate: ReadGate): RequestHandler {
  return (_req, _res, next) => {
    gate.state().then((s) => next(s === "promoting" ? promoting() : undefined), next);
  };
}
