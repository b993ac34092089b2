// GET /api/file-sync (docs/operations.md "File replication"): every node's last copy, readable by a viewer.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { fileSync } from "@ha/db";
import { Client, dbAvailable, startPanel, type Panel } from "./helpers.ts";

const skip = await dbAvailable();

describe("panel: file replication status", { skip: skip ?? false }, () => {
  let p: Panel;
  before(async () => {
    p = await startPanel();
  });
  after(async () => {
    await p?.stop();
  });

  test("a viewer sees each node's last run, success and rsync's error; no login, no data", async () => {
    await p.db.insert(fileSync).values([
      { nodeid: 2, fileSet: "mgrfiles", lastRunAt: new Date("2026-01-01T00:05:00Z"), lastOkAt: new Date("2026-01-01T00:05:00Z"), ok: true, filesChanged: 3, durationMs: 41 },
      { nodeid: 3, fileSet: "mgrfiles", lastRunAt: new Date("2026-01-01T00:05:00Z"), lastOkAt: new Date("2026-01-01T00:00:00Z"), ok: false, error: "rsync exit 10 (error in socket I/O): rsync: [sender] failed to connect to 172.31.224.13", durationMs: 3002 },
    ]);
    assert.equal((await new Client(p.url).get("/api/file-sync")).status, 401);
    await p.addUser("viewer", "viewer password 123", "viewer");
    const v = new Client(p.url);
    await v.login("viewer", "viewer password 123");
    const r = await v.get("/api/file-sync");
    assert.equal(r.status, 200);
    const nodes = r.json.nodes as Array<Record<string, unknown>>;
    assert.deepEqual(nodes.map((n) => [n.nodeid, n.ok, n.fileSet]), [[2, true, "mgrfiles"], [3, false, "mgrfiles"]]);
    assert.match(String(nodes[1]!.error), /failed to connect/);
    assert.equal(nodes[1]!.lastOkAt, "2026-01-01T00:00:00.000Z");
  });
});
