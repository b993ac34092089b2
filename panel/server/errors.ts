// Every error leaves the API as JSON: { error: "what is wrong", field?: "which input" }.
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
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      res.status(err.status).json(err.field ? { error: err.message, field: err.field } : { error: err.message });
      return;
    }
    const pe = err as ParserError;
    if (pe?.type === "entity.too.large") return void res.status(413).json({ error: "request body too large" });
    if (pe?.type === "entity.parse.failed") return void res.status(400).json({ error: "request body is not valid JSON" });
    if (typeof pe?.status === "number" && pe.status >= 400 && pe.status < 500) return void res.status(pe.status).json({ error: pe.message });
    if (isDbDown(err)) {
      log.warn({ err: (err as { cause?: Error }).cause?.message ?? (err as Error).message }, "database unavailable");
      return void res.status(503).json({ error: "the database is unavailable; try again shortly" });
    }
    log.error({ err, method: req.method, url: req.originalUrl }, "request failed");
    res.status(500).json({ error: "internal error" });
  };
}

function isDbDown(err: unknown): boolean {
  const code = (err as { code?: string; cause?: { code?: string } })?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  return code === "ECONNREFUSED" || code === "ENOENT" || code === "ETIMEDOUT" || code === "PROTOCOL_CONNECTION_LOST" || code === "ER_ACCESS_DENIED_ERROR" || code === "ER_BAD_DB_ERROR";
}
