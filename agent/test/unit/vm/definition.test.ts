import { test } from "node:test";
import assert from "node:assert/strict";
import { checkVmName, parseVmDefinition, vmError, withVmError } from "../../../src/effects/vm/driver.ts";

const good = { name: "web1", ramMb: 1024, vcpus: 2, disk: { kind: "network", path: "rbd:pool/web1" }, ip: "172.31.224.128", ha: true };

test("a valid definition parses unchanged; ip and ha are optional", () => {
  assert.deepEqual(parseVmDefinition(good), good);
  const { ip: _ip, ha: _ha, ...minimal } = good;
  assert.deepEqual(parseVmDefinition(minimal), minimal);
});

test("every problem is reported with its field and the VM's name", () => {
  assert.throws(
    () => parseVmDefinition({ ...good, ramMb: 0, vcpus: 1.5, disk: { kind: "nas", path: "" }, ip: "300.1.1.1" }),
    (err: Error) => {
      assert.match(err.message, /^vm web1: invalid definition: /);
      for (const field of ["ramMb", "vcpus", "disk.kind", "disk.path", "ip"]) assert.ok(err.message.includes(`${field}:`), `${field} in ${err.message}`);
      return true;
    },
  );
  assert.throws(() => parseVmDefinition({ ...good, colour: "red" }), /vm web1: invalid definition: .*colour/);
  assert.throws(() => parseVmDefinition(null), /vm \?: invalid definition: \(root\)/);
});

test("names must be safe identifiers (they end up in paths, command lines and XML)", () => {
  for (const bad of ["", "1web", "../etc", "web 1", "web;rm", "a".repeat(64), "<x>"]) {
    assert.throws(() => parseVmDefinition({ ...good, name: bad }), /invalid definition: name:/, bad);
    assert.throws(() => checkVmName(bad), /invalid name/, bad);
  }
  for (const fine of ["web1", "db-2.prod", "A_b"]) assert.equal(checkVmName(fine), fine);
});

test("errors read 'vm NAME: OP failed: cause' and are not wrapped twice", async () => {
  assert.equal(vmError("web1", "start", new Error("disk locked")).message, "vm web1: start failed: disk locked");
  assert.equal(vmError("web1", "start", new Error("vm web1: invalid name")).message, "vm web1: invalid name");
  await assert.rejects(withVmError("web1", "stop", async () => Promise.reject(new Error("boom"))), { message: "vm web1: stop failed: boom" });
  assert.equal(await withVmError("web1", "stop", async () => 7), 7);
});
