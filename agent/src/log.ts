// Structured logs (pino), one JSON line per decision and effect, into the configured log file.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(file: string | undefined, name = "corolistener"): Logger {
  if (!file) return pino({ name });
  mkdirSync(dirname(file), { recursive: true });
  return pino({ name }, pino.destination({ dest: file, sync: true, mkdir: true }));
}
