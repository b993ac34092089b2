// Every error leaves the API as JSON: { error: "what is wrong", field?: "which input" }.
// A database that is away for now (unreachable, read-only while being promoted, overloaded) is a 503
// with Retry-After (`dbUnavailableReason`); any other unexpected error is a 500 "internal error".
import type { ErrorRequestHandler, Request } from "express";
import { z } from "zod";
import type { Logger } from "pino";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Parses `input` with `schema` or throws a 400 naming the first bad field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join(".") : undefined;
  let message = issue?.message ?? "invalid input";
  if (issue?.code === "unrecognized_keys") message = `unknown field(s): ${issue.keys.join(", ")}`;
  throw new HttpError(400, field ? `${field}: ${message}` : message, field ?? (issue?.code === "unrecognized_keys" ? issue.keys[0] : undefined));
}

/** Errors from body-parser carry a `type` and a `status`. */
type ParserError = Error & { type?: string; status?: number };

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req: Request, res, _next) => {
    if (res.headersSent) return;
    const down = err instanceof HttpError ? null : dbUnavailableReason(err);
    if (down) {
      // Expected during a failover (the new master's DB is promoted): a warning with the detail, no stack.
      log.warn({ reason: down, ...dbErrorDetail(err), method: req.method, url: req.originalUrl }, "database unavailable");
      err = dbUnavailable(down);
    }
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      res.status(err.status).json(err.field ? { error: err.message, field: err.field } : { error: err.message });
      return;
    }
    const pe = err as ParserError;
    if (pe?.type === "entity.too.large") return void res.status(413).json({ error: "request body too large" });
    if (pe?.type === "entity.parse.failed") return void res.status(400).json({ error: "request body is not valid JSON" });
    if (typeof pe?.status === "number" && pe.status >= 400 && pe.status < 500) return void res.status(pe.status).json({ error: pe.message });
    // Anything else is a bug: the log keeps the detail (stack, SQL), the client gets nothing of it.
    log.error({ err, method: req.method, url: req.originalUrl }, "request failed");
    res.status(500).json({ error: "internal error" });
  };
}

/** Seconds a client should wait before retrying a request refused because the DB is away. */
export const DB_RETRY_AFTER_S = 2;

/** The 503 for "the database cannot serve this right now" (`reason` is short and safe to show). */
export const dbUnavailable = (reason: string) =>
  new HttpError(503, `the cluster database is not available right now (${reason}); retry in a moment`, undefined, { "Retry-After": String(DB_RETRY_AFTER_S) });

type DbErr = { code?: unknown; errno?: unknown; syscall?: unknown; fatal?: unknown; message?: unknown; query?: unknown; cause?: unknown; errors?: unknown };

/** Server errors (mysql2 `code`) that mean "not now": the DB is being promoted, restarted or is overloaded. */
const SERVER_CODES: Record<string, string> = {
  ER_CON_COUNT_ERROR: "too many connections",
  ER_LOCK_WAIT_TIMEOUT: "lock wait timeout",
  ER_LOCK_DEADLOCK: "deadlock",
  ER_SERVER_SHUTDOWN: "server shutting down",
  ER_CONNECTION_KILLED: "connection killed",
  ER_READ_ONLY_MODE: "read-only",
  ER_ACCESS_DENIED_ERROR: "access denied",
  ER_BAD_DB_ERROR: "no such database",
  // mysql2's own: the connection went away, or no connection could be made in time.
  PROTOCOL_CONNECTION_LOST: "connection lost",
  PROTOCOL_SEQUENCE_TIMEOUT: "timed out",
};

/** Socket errors: only when they come from a DB connection (mysql2 marks those `fatal`, or drizzle wrapped them). */
const SOCKET_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOENT: "no database socket",
  ETIMEDOUT: "connection timed out",
  ECONNRESET: "connection reset",
  EPIPE: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNABORTED: "connection aborted",
};

/**
 * Pure: if `err` (a mysql2 error, or drizzle's DrizzleQueryError wrapping one in `cause`) means the
 * database is unavailable for now (unreachable, connection lost, read-only while being promoted,
 * overloaded), a short reason to show; otherwise null (a real bug: 500).
 */
export function dbUnavailableReason(err: unknown): string | null {
  return classify(err, false, 0);
}

function classify(err: unknown, wrapped: boolean, depth: number): string | null {
  if (!err || typeof err !== "object" || depth > 5) return null;
  const e = err as DbErr;
  const code = typeof e.code === "string" ? e.code : undefined;
  const message = typeof e.message === "string" ? e.message : "";
  if (code === "ER_OPTION_PREVENTS_STATEMENT" || e.errno === 1290) {
    // 1290 is also --secure-file-priv, --skip-grant-tables...: only read-only is "wait for the promotion".
    if (/read[-_ ]only/i.test(message)) return "read-only";
  } else if (code && SERVER_CODES[code]) {
    return SERVER_CODES[code]!;
  } else if (code && SOCKET_CODES[code] && (wrapped || e.fatal === true || e.syscall === "connect")) {
    return SOCKET_CODES[code]!;
  } else if (e.fatal === true && /closed state/.test(message)) {
    return "connection lost"; // mysql2: a query on a pooled connection that had died
  }
  // drizzle: DrizzleQueryError { query, params, cause: mysql2 error }; net: AggregateError { errors }.
  const fromCause = classify(e.cause, typeof e.query === "string", depth + 1);
  if (fromCause) return fromCause;
  if (!Array.isArray(e.errors)) return null;
  for (const sub of e.errors) {
    const r = classify(sub, wrapped || e.fatal === true, depth + 1);
    if (r) return r;
  }
  return null;
}

/** For the log: the innermost DB error's code and message (never sent to clients). */
export function dbErrorDetail(err: unknown): { code?: string; errno?: number; dbError?: string } {
  let e = err as DbErr | undefined;
  for (let i = 0; i < 5 && e && typeof e.cause === "object" && e.cause; i++) e = e.cause as DbErr;
  return {
    code: typeof e?.code === "string" ? e.code : undefined,
    errno: typeof e?.errno === "number" ? e.errno : undefined,
    dbError: typeof e?.message === "string" ? e.message : undefined,
  };
}
