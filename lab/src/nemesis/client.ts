// The nemesis' client: writes through the panel API on the cluster IP, one write at a time,
// continuously, and reads every ~500 ms, recording every operation (history.ts).
//
// The root namespace has no route to the lab, so the client runs as its own Node process inside the
// lab's switch namespace (`ip netns exec <lab>-sw`, which has an address on the control network and
// is no node's), and prints one JSON line per operation; `NemesisClient` (below, in the test or bench
// process) starts it and collects the lines. Both share this machine's clock.
//
//  - Each write creates user nem-<seed>-<seq> (POST /api/users, a unique name per attempt, never
//    retried): 2xx = acknowledged; 503, 5xx, timeout or a broken connection = indeterminate (may or
//    may not be kept); 4xx = refused (401/403: the session is gone, log in again). One new write at
//    a time; only one left unanswered for stallMs lets the next start (see the writer).
//  - One admin session: created with the setup token (read from the nodes' agent logs, where the
//    master's panel prints it) or by logging in; on 401/403 the client logs in again.
//  - Every request on a fresh TCP connection: a kept-alive socket to a node that lost the cluster IP
//    would otherwise keep talking to the old master.
//  - stdin commands (JSON lines): {"cmd":"pause"} stops writing (answers {"type":"paused"}),
//    {"cmd":"final-read"} reads until one read succeeds (marked final), {"cmd":"stop"} exits.
import http from "node:http";
import { existsSync, readFileSync, createWriteStream, type WriteStream } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { resolve, dirname } from "node:path";
import type { ClientEvent, LoginOp, OpStatus, ReadOp, WriteOp } from "./history.ts";
import { toRanges } from "./history.ts";

export type ClientOptions = {
  /** http://<cluster IP>:1500 */
  baseUrl: string;
  seed: number;
  admin: { username: string; password: string };
  /** Host paths of the nodes' agent.out: the setup token is looked up there. */
  setupLogs: string[];
  /** Pause between two writes (ms); 0 = back to back. */
  writeGapMs: number;
  readEveryMs: number;
  writeTimeoutMs: number;
  readTimeoutMs: number;
  /** A write unanswered this long no longer holds up the next one (see the writer). */
  stallMs: number;
  /** At most this many writes unanswered at once. */
  maxOutstanding: number;
  /** Login and setup requests give up after this long (they are retried). */
  loginTimeoutMs: number;
};

export const DEFAULT_CLIENT: Omit<ClientOptions, "baseUrl" | "seed" | "setupLogs"> = {
  admin: { username: "nemesis-admin", password: "nemesis admin password 42" },
  writeGapMs: 100,
  readEveryMs: 500,
  // Longer than MariaDB's semi-sync timeout (10 s), so a commit that waits for it is still seen answered.
  writeTimeoutMs: 20_000,
  readTimeoutMs: 5000,
  stallMs: 2000,
  maxOutstanding: 10,
  loginTimeoutMs: 5000,
};

export const usernameOf = (seed: number, seq: number) => `nem-${seed}-${seq}`;

// ---------------------------------------------------------------------------------------------
// Inside the switch namespace.

type Reply = { status: OpStatus; body: unknown; cookies: Record<string, string>; error?: string };

function request(base: string, method: string, path: string, o: { body?: unknown; cookie?: string; csrf?: string; timeoutMs: number }): Promise<Reply> {
  return new Promise((done) => {
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = { connection: "close", accept: "application/json" };
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    if (o.cookie) headers.cookie = o.cookie;
    if (o.csrf) headers["x-csrf-token"] = o.csrf;
    let settled = false;
    const finish = (r: Reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done(r);
    };
    const req = http.request(new URL(path, base), { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", (err) => finish({ status: "error", body: null, cookies: {}, error: err.message }));
      res.on("end", () => {
        const cookies: Record<string, string> = {};
        for (const c of res.headers["set-cookie"] ?? []) {
          const m = /^([^=;\s]+)=([^;]*)/.exec(c);
          if (m) cookies[m[1]!] = decodeURIComponent(m[2]!);
        }
        let body: unknown = null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          /* not JSON */
        }
        finish({ status: res.statusCode ?? "error", body, cookies });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: "timeout", body: null, cookies: {}, error: `no answer within ${o.timeoutMs} ms` });
    }, o.timeoutMs);
    req.on("error", (err) => finish({ status: "error", body: null, cookies: {}, error: err.message }));
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errorText = (r: Reply) => r.error ?? ((r.body as { error?: string } | null)?.error ?? undefined);

/** Setup tokens in the agent logs (pino lines with setupToken), newest first. */
function setupTokens(logs: string[]): string[] {
  const found: Array<{ t: number; token: string }> = [];
  for (const path of logs) {
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.includes('"setupToken"')) continue;
      try {
        const j = JSON.parse(line) as { setupToken?: string; time?: number };
        if (j.setupToken) found.push({ t: Number(j.time ?? 0), token: j.setupToken });
      } catch {
        const m = /"setupToken":"([^"]+)"/.exec(line);
        if (m) found.push({ t: 0, token: m[1]! });
      }
    }
  }
  return [...new Set(found.sort((a, b) => b.t - a.t).map((f) => f.token))];
}

/** Runs the client until told to stop; `emit` gets every event. */
export async function runClient(o: ClientOptions, emit: (e: ClientEvent) => void, commands: AsyncIterable<string>): Promise<void> {
  const base = o.baseUrl;
  let session: { cookie: string; csrf: string } | null = null;
  let loggingIn: Promise<void> | null = null;
  let writing = true;
  let stopped = false;
  let seq = 0;
  const mine = new RegExp(`^nem-${o.seed}-(\\d+)$`);

  const adopt = (r: Reply) => {
    const sid = r.cookies.ha_sid;
    const csrf = r.cookies.ha_csrf ?? (r.body as { csrf?: string } | null)?.csrf;
    if (sid && csrf) session = { cookie: `ha_sid=${encodeURIComponent(sid)}; ha_csrf=${encodeURIComponent(csrf)}`, csrf };
  };

  /** Setup (first start) or login, retried until a session exists or the client stops. */
  const establish = async () => {
    let triedTokens = new Set<string>();
    for (let attempt = 0; !session && !stopped; attempt++) {
      // Is setup still needed? (Also waits for the panel to answer at all.)
      const st = await request(base, "GET", "/api/setup", { timeoutMs: o.loginTimeoutMs });
      const needed = st.status === 200 && (st.body as { needed?: boolean } | null)?.needed === true;
      if (needed) {
        const token = setupTokens(o.setupLogs).find((t) => !triedTokens.has(t));
        if (token) {
          const start = Date.now();
          const r = await request(base, "POST", "/api/setup", { body: { token, username: o.admin.username, password: o.admin.password }, timeoutMs: o.loginTimeoutMs });
          emit({ type: "setup", start, end: Date.now(), status: r.status, ...(errorText(r) ? { error: errorText(r) } : {}) } satisfies LoginOp);
          if (r.status === 201) {
            adopt(r);
            continue;
          }
          if (r.status === 403) triedTokens.add(token);
        } else if (attempt % 10 === 0) {
          triedTokens = new Set(); // a token may have been printed again (a new master's panel)
        }
        await sleep(500);
        continue;
      }
      if (st.status !== 200) {
        await sleep(250);
        continue;
      }
      const start = Date.now();
      const r = await request(base, "POST", "/api/login", { body: { username: o.admin.username, password: o.admin.password }, timeoutMs: o.loginTimeoutMs });
      emit({ type: "login", start, end: Date.now(), status: r.status, ...(errorText(r) ? { error: errorText(r) } : {}) } satisfies LoginOp);
      if (r.status === 200) adopt(r);
      else await sleep(r.status === 429 ? 5000 : 250);
    }
  };
  const ensureSession = async () => {
    if (session) return session;
    loggingIn ??= establish().finally(() => (loggingIn = null));
    await loggingIn;
    return session;
  };
  const lost = (s: { cookie: string } | null) => {
    if (session && s && session.cookie === s.cookie) session = null;
  };

  const read = async (final: boolean): Promise<ReadOp | null> => {
    const s = await ensureSession();
    if (!s) return null;
    const start = Date.now();
    const r = await request(base, "GET", "/api/users", { cookie: s.cookie, timeoutMs: o.readTimeoutMs });
    const end = Date.now();
    const seqs: number[] = [];
    let count = 0;
    if (r.status === 200) {
      for (const u of (r.body as { users?: Array<{ username: string }> } | null)?.users ?? []) {
        const m = mine.exec(u.username);
        if (m) seqs.push(Number(m[1]));
        count++;
      }
    }
    if (r.status === 401 || r.status === 403) lost(s);
    const op: ReadOp = { type: "read", start, end, status: r.status, seen: toRanges(seqs), count, ...(final ? { final } : {}), ...(r.status !== 200 && errorText(r) ? { error: errorText(r) } : {}) };
    emit(op);
    return op;
  };

  const reader = async () => {
    while (!stopped) {
      const t = Date.now();
      await read(false);
      await sleep(Math.max(0, o.readEveryMs - (Date.now() - t)));
    }
  };

  const control = async () => {
    for await (const line of commands) {
      let cmd: { cmd?: string; timeoutMs?: number } = {};
      try {
        cmd = JSON.parse(line) as typeof cmd;
      } catch {
        continue;
      }
      if (cmd.cmd === "pause") {
        writing = false;
        // The write in flight ends first (its answer is recorded): wait for the writer to be idle.
        const at = seq;
        while (inFlight()) await sleep(20);
        emit({ type: "paused", t: Date.now(), lastSeq: at });
      } else if (cmd.cmd === "final-read") {
        const deadline = Date.now() + (cmd.timeoutMs ?? 30_000);
        let ok = false;
        while (!ok && Date.now() < deadline) {
          const r = await read(true);
          ok = r?.status === 200;
          if (!ok) await sleep(250);
        }
        if (!ok) emit({ type: "note", t: Date.now(), msg: "final read: no successful read through the master" });
      } else if (cmd.cmd === "stop") break;
    }
    stopped = true;
  };

  /** Writes sent and not answered yet (pause waits for none). */
  const outstanding = new Set<Promise<void>>();
  const inFlight = () => outstanding.size > 0;
  /**
   * One new write at a time. A write unanswered after stallMs is left running (its answer is still
   * recorded, up to writeTimeoutMs) and the next one starts: one connection hung on a node that lost
   * the cluster IP must not hide for 20 s that the new master accepts writes.
   */
  const writer = async () => {
    while (!stopped) {
      if (!writing) {
        await sleep(50);
        continue;
      }
      if (outstanding.size >= o.maxOutstanding) {
        await Promise.race(outstanding);
        continue;
      }
      const s = await ensureSession();
      if (!s || !writing) continue;
      const mine = ++seq;
      let answered: OpStatus | undefined;
      const p = (async () => {
        const start = Date.now();
        const r = await request(base, "POST", "/api/users", {
          body: { username: usernameOf(o.seed, mine), password: "nemesis user password", role: "viewer" },
          cookie: s.cookie,
          csrf: s.csrf,
          timeoutMs: o.writeTimeoutMs,
        });
        emit({ type: "write", seq: mine, start, end: Date.now(), status: r.status, ...(r.status !== 201 && errorText(r) ? { error: errorText(r) } : {}) } satisfies WriteOp);
        if (r.status === 401 || r.status === 403) lost(s);
        answered = r.status;
      })();
      outstanding.add(p);
      void p.finally(() => outstanding.delete(p));
      await Promise.race([p, sleep(o.stallMs)]);
      if (answered !== undefined && (typeof answered !== "number" || answered >= 500)) await sleep(200);
      if (o.writeGapMs > 0) await sleep(o.writeGapMs);
    }
  };

  emit({ type: "ready", t: Date.now() });
  await Promise.all([writer(), reader(), control()]);
}

// ---------------------------------------------------------------------------------------------
// In the test or bench process.

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../../..");
const TSX_LOADER = pathToFileURL(resolve(REPO, "node_modules/tsx/dist/loader.mjs")).href;

/** The pieces of a Lab the client needs. */
export type ClientLab = { topo: { switchNs: string; clusterIp: string; nodes: Array<{ id: number }> }; nodeDir(id: number): string };

export class NemesisClient {
  readonly writes: WriteOp[] = [];
  readonly reads: ReadOp[] = [];
  readonly logins: LoginOp[] = [];
  readonly notes: Array<{ t: number; msg: string }> = [];
  stderr = "";
  private readonly child: ChildProcess;
  private readonly waiters: Array<() => void> = [];
  private paused: { t: number; lastSeq: number } | null = null;
  private readonly history: WriteStream | null;

  private constructor(child: ChildProcess, historyFile?: string) {
    this.child = child;
    this.history = historyFile ? createWriteStream(historyFile, { flags: "a" }) : null;
    child.stderr!.on("data", (d) => (this.stderr = (this.stderr + String(d)).slice(-20_000)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      this.history?.write(line + "\n");
      let e: ClientEvent;
      try {
        e = JSON.parse(line) as ClientEvent;
      } catch {
        this.notes.push({ t: Date.now(), msg: `unparsable client line: ${line.slice(0, 200)}` });
        return;
      }
      if (e.type === "write") this.writes.push(e);
      else if (e.type === "read") this.reads.push(e);
      else if (e.type === "login" || e.type === "setup") this.logins.push(e);
      else if (e.type === "note" || e.type === "fatal") this.notes.push({ t: e.t, msg: e.msg });
      else if (e.type === "paused") this.paused = { t: e.t, lastSeq: e.lastSeq };
      for (const w of this.waiters.splice(0)) w();
    });
    child.on("exit", () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Starts the client in the lab's switch namespace. */
  static start(lab: ClientLab, o: { seed: number; historyFile?: string } & Partial<Omit<ClientOptions, "seed">>): NemesisClient {
    const opts: ClientOptions = {
      ...DEFAULT_CLIENT,
      baseUrl: `http://${lab.topo.clusterIp}:1500`,
      setupLogs: lab.topo.nodes.map((n) => resolve(lab.nodeDir(n.id), "log", "agent.out")),
      ...o,
    };
    const child = spawn("ip", ["netns", "exec", lab.topo.switchNs, process.execPath, "--import", TSX_LOADER, fileURLToPath(import.meta.url), JSON.stringify(opts)], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: REPO,
    });
    return new NemesisClient(child, o.historyFile);
  }

  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private send(cmd: object) {
    if (this.alive) this.child.stdin!.write(JSON.stringify(cmd) + "\n");
  }

  /** Waits until `pred` holds (checked at every event); false on timeout or client exit. */
  async waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0 || !this.alive) return pred();
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return true;
  }

  /** Stops writing; resolves once the write in flight has its answer recorded. */
  async pause(timeoutMs = 30_000): Promise<boolean> {
    this.send({ cmd: "pause" });
    return this.waitFor(() => this.paused !== null, timeoutMs);
  }

  /** One successful read through the master (retried up to timeoutMs), or null. */
  async finalRead(timeoutMs = 30_000): Promise<ReadOp | null> {
    const from = this.reads.length;
    this.send({ cmd: "final-read", timeoutMs });
    const done = () => this.reads.slice(from).some((r) => r.final && r.status === 200) || this.notes.some((n) => n.msg.startsWith("final read:") && n.t >= Date.now() - timeoutMs - 5000);
    await this.waitFor(done, timeoutMs + 5000);
    return this.reads.slice(from).find((r) => r.final && r.status === 200) ?? null;
  }

  async stop(): Promise<void> {
    if (this.alive) {
      this.send({ cmd: "stop" });
      const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
      const t = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(t);
    }
    await new Promise<void>((r) => (this.history ? this.history.end(() => r()) : r()));
  }
}

// Entry point inside the namespace: node --import tsx client.ts '<ClientOptions as JSON>'
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const opts = JSON.parse(process.argv[2] ?? "{}") as ClientOptions;
  const out = (e: ClientEvent) => process.stdout.write(JSON.stringify(e) + "\n");
  const lines = createInterface({ input: process.stdin });
  runClient(opts, out, lines)
    .then(() => process.exit(0))
    .catch((err: Error) => {
      out({ type: "fatal", t: Date.now(), msg: err.stack ?? err.message });
      process.exit(1);
    });
}
