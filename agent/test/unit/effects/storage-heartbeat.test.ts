// The storage heartbeat's file I/O runs on its own thread: busy libuv pool threads (the agent's
// other file I/O) must not delay it, and a hung storage must show as timeouts, then recover.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageHeartbeat } from "../../../src/effects/storage-heartbeat.ts";

const hb = (nodeid: number, seq: number) => ({ nodeid, incarnation: 7, seq, selfStatus: "member" as const, runningVms: ["a", "b"] });

/** A named pipe: reading it blocks the reading thread until something writes to it. */
function fifo(path: string) {
  execFileSync("mkfifo", [path]);
}

/**
 * Ends a read blocked on the named pipe: open it read-write (never blocks on Linux), write, close
 * (EOF). A reader that had not opened the pipe yet (its request still queued for a pool thread)
 * would miss that and block later, so this repeats until `done` settles.
 */
async function releaseUntil(path: string, done: Promise<unknown>) {
  let settled = false;
  void done.finally(() => (settled = true));
  for (let i = 0; !settled && i < 500; i++) {
    const fd = openSync(path, "r+");
    writeFileSync(fd, "x");
    closeSync(fd);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("write then read back; malformed and foreign files are reported, not trusted", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hb-"));
  const store = new StorageHeartbeat(dir, 2000);
  try {
    await store.write(hb(1, 1));
    await store.write(hb(1, 2)); // replaces
    await store.write(hb(2, 5));
    writeFileSync(join(dir, "heartbeats", "node-3.json"), "{not json");
    writeFileSync(join(dir, "heartbeats", "node-4.json"), JSON.stringify(hb(5, 1))); // lies about its id
    writeFileSync(join(dir, "heartbeats", "notes.txt"), "ignored");
    const { heartbeats, invalid } = await store.readAll();
    assert.deepEqual(heartbeats.map((h) => [h.nodeid, h.seq]).sort(), [[1, 2], [2, 5]]);
    assert.deepEqual(invalid.sort(), ["node-3.json", "node-4.json"]);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "heartbeats", "node-1.json"), "utf8")), hb(1, 2));
    assert.deepEqual(readdirSync(join(dir, "heartbeats")).filter((n) => n.endsWith(".tmp")), [], "no temp file left");
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a write is not delayed by the agent's other file I/O holding every libuv pool thread", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hb-"));
  const store = new StorageHeartbeat(dir, 2000);
  const pipes: string[] = [];
  const blocked: Array<Promise<unknown>> = [];
  try {
    // Block all pool threads (default 4, more to be sure) in reads of named pipes.
    mkdirSync(join(dir, "busy"));
    for (let i = 0; i < 8; i++) {
      const p = join(dir, "busy", `p${i}`);
      fifo(p);
      pipes.push(p);
      blocked.push(readFile(p).catch(() => null));
    }
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await store.write(hb(1, 1));
    const { heartbeats } = await store.readAll();
    const ms = performance.now() - t0;
    assert.equal(heartbeats.length, 1);
    assert.ok(ms < 1500, `heartbeat write + read took ${Math.round(ms)} ms with the pool busy`);
  } finally {
    await Promise.all(pipes.map((p, i) => releaseUntil(p, blocked[i]!)));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a hung storage makes reads time out; requests the caller gave up on are dropped; it recovers", async () => {
  const dir = mkdtempSync(join(tmpdir(), "hb-"));
  const store = new StorageHeartbeat(dir, 300);
  try {
    await store.write(hb(1, 1));
    const hung = join(dir, "heartbeats", "node-9.json");
    fifo(hung); // reading it hangs like a dead NFS server
    await assert.rejects(store.readAll(), /heartbeat read timed out after 300 ms/);
    await assert.rejects(store.write(hb(1, 2)), /heartbeat write timed out after 300 ms/);
    // The storage answers again: the I/O thread's read ends (it is the only reader, already in it).
    const fd = openSync(hung, "r+");
    writeFileSync(fd, "x");
    rmSync(hung);
    closeSync(fd);
    await new Promise((r) => setTimeout(r, 100));
    // The queued write expired before it ran: seq 1 is still there, and new requests work.
    assert.equal(JSON.parse(readFileSync(join(dir, "heartbeats", "node-1.json"), "utf8")).seq, 1);
    await store.write(hb(1, 3));
    const { heartbeats } = await store.readAll();
    assert.deepEqual(heartbeats.map((h) => h.seq), [3]);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
