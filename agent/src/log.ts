// Structured logs (pino), one JSON line per decision and effect, into the configured log file.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import pino from "pino";

export type Logger = pino.Logger;

// Secrets from the agent config never reach the log.
const redact = { paths: ["config.database.adminPassword", "config.database.replPassword", "config.panelDb.password", "config.fileSync.secret", "*.password"], censor: "[redacted]" };

export function createLogger(file: string | undefined, name = "corolistener"): Logger {
  if (!file) return pino({ name, redact });
  mkdirSync(dirname(file), { recursive: true });
  return pino({ name, redact }, pino.destination({ dest: file, sync: true, mkdir: true }));
}
