// Changes are refused with a clear message while the cluster has no quorum, and while the panel
// cannot know (the agent's status is missing or unreadable); reads and user management still work.
// (api.test.ts covers nodes and VMs without quorum; this adds settings and the "unknown" states.)
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { Client, dbAvailable, fakeView, startPanel, type Panel } from "./helpers.ts";

const skip = await dbAvailable();

describe("writes need a quorate cluster", { skip: skip ?? false }, () => {
  let p: Panel;
  let admin: Client;
  before(async () => {
    p = await startPanel();
    await p.addUser("qadmin", "quorum admin password", "admin");
    admin = new Client(p.url);
    await admin.login("qadmin", "quorum admin password");
  });
  after(async () => {
    await p?.stop();
  });

  /** The status file is polled every 100 ms: wait until the panel saw the restored view. */
  const quorumBack = async () => {
    for (let i = 0; i < 50 && (await admin.get("/api/election")).json.changesRefused; i++) await new Promise((r) => setTimeout(r, 100));
  };
  const refusedFor = async (why: RegExp) => {
    for (let i = 0; i < 50 && !why.test((await admin.get("/api/election")).json.changesRefused ?? ""); i++) await new Promise((r) => setTimeout(r, 100));
  };
  const writes = () => [
    admin.patch("/api/nodes/2", { prio: 42 }),
    admin.patch("/api/vms/web1", { restartPriority: 3 }),
    admin.patch("/api/settings", { failback: true }),
  ];

  test("no quorum: every cluster change is a 409 that says why; reads and user management work", async () => {
    await p.setStatus(fakeView({ quorate: false }));
    await refusedFor(/no quorum/);
    try {
      for (const r of await Promise.all(writes())) {
        assert.equal(r.status, 409);
        assert.match(r.json.error, /the cluster has no quorum \(1 of 2 votes needed\): changes are refused until quorum is back/);
      }
      assert.equal((await admin.get("/api/settings")).status, 200);
      assert.equal((await admin.post("/api/users", { username: "late", password: "late user password", role: "viewer" })).status, 201, "users are panel data, not cluster state");
    } finally {
      await p.setStatus(fakeView());
    }
    await quorumBack();
    for (const r of await Promise.all(writes())) assert.equal(r.status, 200, JSON.stringify(r.json));
  });

  test("cluster state unknown (unreadable agent status): changes are refused too", async () => {
    await p.setStatus({ not: "a view" });
    await refusedFor(/unknown/);
    try {
      for (const r of await Promise.all(writes())) {
        assert.equal(r.status, 409);
        assert.match(r.json.error, /changes are refused while the cluster state is unknown/);
      }
    } finally {
      await p.setStatus(fakeView());
    }
    await quorumBack();
  });
});
