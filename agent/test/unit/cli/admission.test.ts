import { test } from "node:test";
import assert from "node:assert/strict";
import { admissionInputs, renderAdmission } from "../../../src/cli/admission.ts";
import { checkAdmission } from "../../../src/core/admission.ts";
import type { NodeView, VmSpec } from "../../../src/core/types.ts";

const view = (statuses: string[], ramMb = 1024): NodeView =>
  ({
    nodes: statuses.map((status, i) => ({ nodeid: i + 1, addr: `10.0.0.${i + 1}`, prio: 10, status, isMaster: i === 0, reason: "", ramMb, reserve: false, maintenance: false })),
    vms: [{ vm: "a", owner: 2, epoch: 3, local: null, note: "" }],
  }) as unknown as NodeView;
const specs: VmSpec[] = [
  { id: "a", ramMb: 800, ha: true, storage: "shared", restartPriority: 0 },
  { id: "b", ramMb: 800, ha: true, storage: "shared", restartPriority: 0 },
];

test("admission CLI: the view's owners win over the metadata files; nodes not up count as down", () => {
  const { nodes, vms } = admissionInputs(view(["leader", "member", "offline"]), specs, [{ vm: "a", node: 1 }, { vm: "b", node: 1 }]);
  assert.deepEqual(vms.map((v) => [v.id, v.owner]), [["a", 2], ["b", 1]]);
  assert.deepEqual(nodes.map((n) => [n.nodeid, n.down, n.ramMb]), [[1, false, 1024], [2, false, 1024], [3, true, 1024]]);
  // Two nodes up, each full: losing either leaves its VM down.
  const r = checkAdmission(nodes, vms);
  assert.equal(r.ok, false);
  const text = renderAdmission(r);
  assert.match(text, /^WARNING: losing n1 leaves 1 HA VM\(s\) down \(b\)/);
  assert.match(text, /lose n1: FAILS: 0 HA VM\(s\) restart elsewhere; 1 stay down\n {4}b stays down: needs 800 MB, most free is 224 MB on n2/);
  assert.match(text, /lose n3: not checked \(n3 is already down\)/);
});

test("admission CLI: OK output", () => {
  const { nodes, vms } = admissionInputs(view(["leader", "member", "member"], 4096), specs, []);
  const text = renderAdmission(checkAdmission(nodes, vms));
  assert.match(text, /^OK: the cluster survives the loss of any one node/);
  assert.match(text, /lose n2: ok: 1 HA VM\(s\) restart elsewhere/);
});
