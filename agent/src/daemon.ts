// The node daemon: corosync events in, logged; later issues feed them to the HA core.
import { CorosyncClient, type ClusterEvent } from "./corosync/index.ts";
import { loadAgentConfig } from "./config.ts";
import { createLogger } from "./log.ts";

/** JSON-friendly view of an event for the log (bigints as strings, message payloads as text). */
function loggable(e: ClusterEvent): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? v.toString() : v?.type === "Buffer" ? Buffer.from(v.data).toString() : v)),
  );
}

export async function runDaemon(configPath: string | undefined): Promise<void> {
  const config = loadAgentConfig(configPath);
  const log = createLogger(config.logFile);
  const client = new CorosyncClient({ cpgGroup: config.cpgGroup, logger: log });
  client.on("event", (e: ClusterEvent) => log.info({ event: loggable(e) }, `corosync ${e.type}`));

  const stop = async (signal: string) => {
    log.info({ signal }, "stopping");
    await client.stop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));

  log.info({ config }, "starting");
  await client.start();
  log.info({ snapshot: loggable({ type: "connected", ...client.snapshot() } as unknown as ClusterEvent) }, "connected to corosync");
}
