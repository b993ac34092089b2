// Heartbeat file I/O on a thread of its own.
//
// The heartbeat is how a node proves it is alive and how the master proves a dead node fenced, so
// its write time must measure the shared storage, not the agent. Node's asynchronous fs calls share
// one libuv pool of 4 threads with every other file operation of the agent (VM metadata reads,
// ownership writes, VM definitions, each with an fsync); after a failover dozens of those queue up
// at once and a heartbeat write waited behind them for over 2 s on a healthy disk: the node called
// itself storage-isolated, stopped its VMs and its watchdog reset it. Here the heartbeat uses
// synchronous calls on a dedicated worker thread, so only the storage itself can make it slow (a
// hung NFS mount blocks this thread; the caller's timeout reports that as a failed write).
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from "node:worker_threads";

type Request =
  | { id: number; op: "write"; dir: string; file: string; text: string; deadline: number }
  | { id: number; op: "read"; dir: string; pattern: string; deadline: number };
type Reply = { id: number; ok: true; files?: Array<[string, string | null]> } | { id: number; ok: false; error: string };

// Plain CommonJS evaluated in the worker: no loader, no imports of ours, nothing to compile.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const fs = require("node:fs");
const path = require("node:path");
const port = workerData.port;
function writeAtomic(dir, file, text) {
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, file);
  const tmp = path.join(dir, "." + file + "." + process.pid + ".tmp");
  const fd = fs.openSync(tmp, "w", 0o644);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
  const d = fs.openSync(dir, "r"); // makes the rename durable
  try { fs.fsyncSync(d); } finally { fs.closeSync(d); }
}
function readAll(dir, pattern) {
  let names;
  try { names = fs.readdirSync(dir); } catch (e) { if (e.code === "ENOENT") return []; throw e; }
  const re = new RegExp(pattern);
  return names.filter((n) => re.test(n)).map((n) => {
    try { return [n, fs.readFileSync(path.join(dir, n), "utf8")]; } catch { return [n, null]; }
  });
}
port.on("message", (r) => {
  // The caller gave up on it already (the storage was hung meanwhile): don't do stale work.
  if (Date.now() > r.deadline) return port.postMessage({ id: r.id, ok: false, error: "expired before it ran" });
  try {
    if (r.op === "write") { writeAtomic(r.dir, r.file, r.text); port.postMessage({ id: r.id, ok: true }); }
    else port.postMessage({ id: r.id, ok: true, files: readAll(r.dir, r.pattern) });
  } catch (e) {
    port.postMessage({ id: r.id, ok: false, error: e && e.message ? e.message : String(e) });
  }
});
`;

export class StorageIoThread {
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();

  private channel(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { port: port2 }, transferList: [port2] });
    this.worker.unref(); // never keeps the agent alive
    this.worker.on("error", (err) => this.failAll(`storage I/O thread failed: ${err.message}`));
    this.worker.on("exit", () => {
      this.failAll("storage I/O thread exited");
      this.worker = null;
      this.port = null;
    });
    port1.on("message", (r: Reply) => this.settle(r));
    port1.unref();
    this.port = port1;
    return port1;
  }

  private settle(r: Reply) {
    const done = this.waiting.get(r.id);
    this.waiting.delete(r.id);
    done?.(r);
  }

  private failAll(error: string) {
    for (const [id, done] of this.waiting) done({ id, ok: false, error });
    this.waiting.clear();
  }

  /**
   * One request, answered within `timeoutMs` or rejected. Before calling it a timeout, replies
   * that already arrived are drained: a busy event loop must not turn a fast write into a
   * "storage timed out".
   */
  private call(req: Omit<Request, "id" | "deadline"> & { op: Request["op"] }, timeoutMs: number, what: string): Promise<Reply & { ok: true }> {
    const port = this.channel();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) this.settle(m.message as Reply);
        if (!this.waiting.has(id)) return;
        this.waiting.delete(id);
        reject(new Error(`${what} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        if (r.ok) resolve(r);
        else reject(new Error(`${what} failed: ${r.error}`));
      });
      port.postMessage({ ...req, id, deadline: Date.now() + timeoutMs } as Request);
    });
  }

  /** Replace dir/file atomically and durably (temp file, fsync, rename, fsync of the directory). */
  async writeAtomic(dir: string, file: string, text: string, timeoutMs: number, what: string): Promise<void> {
    await this.call({ op: "write", dir, file, text } as Omit<Request, "id" | "deadline">, timeoutMs, what);
  }

  /** Every file of `dir` whose name matches `pattern`, with its text (null when unreadable). */
  async readAll(dir: string, pattern: RegExp, timeoutMs: number, what: string): Promise<Array<[string, string | null]>> {
    const r = await this.call({ op: "read", dir, pattern: pattern.source } as Omit<Request, "id" | "deadline">, timeoutMs, what);
    return r.files ?? [];
  }

  /** Ends the thread (tests; the daemon's is unref'd). */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}
