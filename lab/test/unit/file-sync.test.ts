// The lab's file-replication wiring: the config it writes passes the agent's schema, and the
// receiver's processes are recognised (so kill/status/teardown find them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { labTopology } from "../../src/topology.ts";
import { classifyCmdline, parseProcessKind } from "../../src/processes.ts";
import { labFileSyncConfig, LAB_FILE_SYNC_SECRET } from "../../src/file-sync.ts";
import { parseAgentConfig } from "../../../agent/src/config.ts";

test("lab file sync: each node's fileSync section is a valid agent config bound to its control address", () => {
  const topo = labTopology("frep", 3);
  const c = parseAgentConfig(JSON.stringify({ fileSync: labFileSyncConfig(topo, topo.nodes[1]!, {}) })).fileSync!;
  assert.equal(c.listenAddress, "172.31.224.12");
  assert.equal(c.hostsAllow, "172.31.224.0/24");
  assert.equal(c.secret, LAB_FILE_SYNC_SECRET);
  assert.deepEqual(Object.keys(c.sets), ["mgrfiles"]);
  assert.equal(parseAgentConfig(JSON.stringify({ fileSync: labFileSyncConfig(topo, topo.nodes[0]!, { schedule: "*/10 * * * * *" }) })).fileSync!.schedule, "*/10 * * * * *");
});

test("lab file sync: the serve wrapper and the rsync daemon count as rsyncd; the client does not", () => {
  assert.equal(classifyCmdline("node --import file:///w/node_modules/tsx/dist/loader.mjs /w/agent/src/cli/nodereplication.ts serve --config /etc/corosync/corolistener.json"), "rsyncd");
  assert.equal(classifyCmdline("rsync --daemon --no-detach --config=/run/corolistener/rsyncd/rsyncd.conf --address=172.31.224.11 --port=873 --log-file=/dev/stderr"), "rsyncd");
  assert.equal(classifyCmdline("rsync --archive --hard-links --delete-after --link-dest=../current --stats /src/ rsync://mgrsync@172.31.224.12/mgrfiles/staging/"), "other");
  assert.equal(parseProcessKind("rsyncd"), "rsyncd");
});
