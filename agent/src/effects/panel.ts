// Starts and stops the control panel on the master, with the service lock and relocated marker.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { takeServiceLock, dropServiceLock, type LockFiles } from "@ha/shared";
import type { Logger } from "../log.ts";

const PANEL_MAIN = fileURLToPath(new URL("../../../panel/server/main.ts", import.meta.url));

export type PanelOptions = LockFiles & {
  nodeid: number;
  host: string;
  port: number;
  tsxLoader: string;
  log: Logger;
  /** The daemon's live view, which the panel streams to browsers. */
  statusFile: string;
  db?: { socketPath: string; user: string; password: string; database: string };
  /** This node's own address: there the panel answers with a refusal pointing to the cluster IP. */
  nodeAddr?: () => string | undefined;
};

export class Panel {
  private child: ChildProcess | null = null;
  /** A loaded panel process waiting to be activated (see panel/server/main.ts). */
  private standby: ChildProcess | null = null;
  private wanted = false;
  constructor(private readonly o: PanelOptions) {}

  /** Loads a standby panel so that becoming master only has to tell it to listen. */
  prepare() {
    if (this.standby || this.child) return;
    const sb = this.spawnProcess(true);
    this.standby = sb;
    sb.on("exit", () => this.standby === sb && (this.standby = null));
  }

  get running() {
    return this.child !== null;
  }

  async start(kind: "restarted" | "moved"): Promise<void> {
    this.wanted = true;
    if (this.child) return;
    await takeServiceLock(this.o, { nodeid: this.o.nodeid, reason: kind });
    const sb = this.standby;
    this.standby = null;
    if (sb && sb.connected) {
      sb.send({ type: "activate" });
      this.adopt(sb);
    } else {
      this.adopt(this.spawnProcess(false));
    }
  }

  private spawnProcess(standby: boolean): ChildProcess {
    return spawn(process.execPath, ["--import", this.o.tsxLoader, PANEL_MAIN], {
      env: {
        ...process.env,
        PANEL_STANDBY: standby ? "1" : "",
        PANEL_HOST: this.o.host,
        PANEL_PORT: String(this.o.port),
        PANEL_NODE: `n${this.o.nodeid}`,
        ...(this.o.nodeAddr?.() ? { PANEL_NODE_ADDR: this.o.nodeAddr()! } : {}),
        PANEL_RELOCATED_MARKER: this.o.relocatedMarkerFile,
        PANEL_STATUS_FILE: this.o.statusFile,
        ...(this.o.db
          ? { PANEL_DB_SOCKET: this.o.db.socketPath, PANEL_DB_USER: this.o.db.user, PANEL_DB_PASSWORD: this.o.db.password, PANEL_DB_NAME: this.o.db.database }
          : {}),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
  }

  private adopt(child: ChildProcess) {
    this.child = child;
    child.on("exit", (code, signal) => {
      if (this.child === child) this.child = null;
      if (this.wanted) {
        // A crashed panel on a healthy master is restarted in place ("restarted", no takeover).
        this.o.log.warn({ code, signal }, "panel exited unexpectedly; restarting in 1 s");
        setTimeout(() => this.wanted && !this.child && this.adopt(this.spawnProcess(false)), 1000).unref();
      }
    });
  }

  async stop(): Promise<void> {
    this.wanted = false;
    const child = this.child;
    if (child) {
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(t);
      this.child = null;
    }
    await dropServiceLock(this.o);
    this.prepare();
  }
}
