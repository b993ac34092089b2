// GET /api/admission: does the cluster survive the loss of any one node? Readable by a viewer; the
// check is the agent's (agent/src/core/admission.ts) on the DB's nodes/VMs and the live RAM/owners.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { eq } from "drizzle-orm";
import { nodes } from "@ha/db";
import { Client, dbAvailable, fakeView, startPanel, type Panel } from "./helpers.ts";

const skip = await dbAvailable();

/** The helpers' 3-node view with the RAM each node offers VMs (as the agent publishes it). */
function viewWithRam(ramMb: number) {
  const v = fakeView();
  return { ...v, nodes: v.nodes.map((n) => ({ ...n, ramMb, reserve: false, maintenance: false })) };
}

describe("panel: admission check", { skip: skip ?? false }, () => {
  let p: Panel;
  let viewer: Client;
  /** Writes the view and waits until the panel has read it (a poll may be under way already). */
  const setRam = async (ramMb: number) => {
    for (let i = 0; i < 50; i++) {
      await p.setStatus(viewWithRam(ramMb));
      if ((p.panel.ctx.status.status.view?.nodes[0] as { ramMb?: number } | undefined)?.ramMb === ramMb) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("the panel did not pick up the new status view");
  };
  before(async () => {
    p = await startPanel();
    await p.addUser("viewer", "viewer password 123", "viewer");
    viewer = new Client(p.url);
    await viewer.login("viewer", "viewer password 123");
  });
  after(async () => {
    await p?.stop();
  });

  test("needs a login", async () => {
    assert.equal((await new Client(p.url).get("/api/admission")).status, 401);
  });

  test("enough RAM: ok for every node; the local-disk VM is not HA and not counted", async () => {
    // Seeded: db1 (4096 MB, HA) on n1, web1 (1024 MB, HA) on n2 (live owner n2), scratch (local) on n3.
    await setRam(16384);
    const r = await viewer.get("/api/admission");
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.ok, true, JSON.stringify(r.json));
    assert.deepEqual(r.json.nodes.map((n: { nodeid: number }) => n.nodeid), [1, 2, 3]);
    assert.deepEqual(r.json.nodes[0].restarted, [{ vm: "db1", node: 2 }]);
    assert.equal(r.json.ramKnown, true);
  });

  test("not enough RAM: warns which VMs would stay down; a node in maintenance is no survivor", async () => {
    await setRam(4096);
    let r = await viewer.get("/api/admission");
    // Losing n1: db1 (4096) fits on n3 (512 used of 4096)? No: 3584 free. On n2: 3072 free. Stays down.
    assert.equal(r.json.ok, false);
    assert.match(r.json.summary, /losing n1 leaves 1 HA VM\(s\) down \(db1\)/);
    await setRam(16384);
    await p.db.update(nodes).set({ maintenance: true }).where(eq(nodes.nodeid, 3));
    await p.db.update(nodes).set({ maintenance: true }).where(eq(nodes.nodeid, 2));
    r = await viewer.get("/api/admission");
    assert.equal(r.json.ok, false, "with n2 and n3 in maintenance nothing can take n1's VM");
    assert.match(r.json.nodes[0].staysDown[0].reason, /every available node is in maintenance/);
    await p.db.update(nodes).set({ maintenance: false });
  });
});
