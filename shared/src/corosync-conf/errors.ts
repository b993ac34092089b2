/** Any problem with corosync.conf content; `line`/`column` (1-based) are set when known. */
export class CorosyncConfError extends Error {
  override name = 'CorosyncConfError';
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** The message without the position suffix. */
  readonly reason: string;

  constructor(reason: string, pos?: { line: number; column: number }) {
    super(pos ? `${reason} (at ${pos.line}:${pos.column})` : reason);
    this.reason = reason;
    this.line = pos?.line;
    this.column = pos?.column;
  }
}
