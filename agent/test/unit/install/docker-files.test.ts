// docker/ cannot be built on this machine (no Docker daemon, no buildx, hadolint is not in Debian), so
// this checks what can be checked without building: the Dockerfiles' structure and the files they
// copy, the corosync libraries the agent loads, compose.yaml, the entrypoint, and their documentation (docs/operations.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseCorosyncConf, readClusterConfig } from "@ha/shared";

const ROOT = new URL("../../../../", import.meta.url).pathname;
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(path: string): Array<{ op: string; args: string }> {
  const text = read(path).replace(/\\\n/g, " ");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
}

const workspacePackages = read("pnpm-workspace.yaml")
  .split("\n")
  .map((l) => /^\s*-\s*(\S+)/.exec(l)?.[1])
  .filter((p): p is string => !!p);

for (const file of ["docker/Dockerfile.agent", "docker/Dockerfile.panel"]) {
  test(`${file}: known instructions, pinned bases, JSON-form commands, copied files exist`, () => {
    const ins = instructions(file);
    const known = new Set(["FROM", "RUN", "COPY", "WORKDIR", "ENV", "EXPOSE", "USER", "CMD", "ENTRYPOINT", "ARG", "LABEL"]);
    for (const i of ins) assert.ok(known.has(i.op), `${file}: unexpected instruction ${i.op}`);
    for (const from of ins.filter((i) => i.op === "FROM")) assert.match(from.args, /^node:20-bookworm-slim( AS \w+)?$/, `${file}: base image ${from.args}`);
    for (const c of ins.filter((i) => i.op === "CMD" || i.op === "ENTRYPOINT")) assert.doesNotThrow(() => JSON.parse(c.args), `${file}: ${c.op} must be JSON (exec form)`);
    for (const c of ins.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))) {
      const sources = c.args.split(/\s+/).slice(0, -1);
      for (const s of sources) if (s !== ".") assert.ok(existsSync(join(ROOT, s)), `${file}: COPY source ${s} does not exist`);
    }
    for (const r of ins.filter((i) => i.op === "RUN" && i.args.includes("apt-get install"))) {
      assert.match(r.args, /--no-install-recommends/);
      assert.match(r.args, /rm -rf \/var\/lib\/apt\/lists\/\*/);
    }
    // pnpm install --frozen-lockfile needs every workspace package's manifest.
    const install = ins.findIndex((i) => i.op === "RUN" && i.args.includes("pnpm install --frozen-lockfile"));
    assert.ok(install > 0, `${file}: no pnpm install --frozen-lockfile`);
    const copiedBefore = ins.slice(0, install).filter((i) => i.op === "COPY").map((i) => i.args).join(" ");
    for (const pkg of workspacePackages) assert.ok(copiedBefore.includes(`${pkg}/package.json`), `${file}: ${pkg}/package.json is not copied before pnpm install`);
    assert.ok(copiedBefore.includes("pnpm-lock.yaml"));
  });
}

test("Dockerfile.agent installs the Debian packages of every corosync library the agent loads", () => {
  const dir = join(ROOT, "agent/src/corosync");
  const sonames = readdirSync(dir).flatMap((f) => [...readFileSync(join(dir, f), "utf8").matchAll(/loadLib\('(lib\w+)\.so\.(\d+)'\)/g)].map((m) => `${m[1]}${m[2]}`)).filter((p) => p !== "libc6");
  assert.deepEqual([...new Set(sonames)].sort(), ["libcmap4", "libcpg4", "libquorum5", "libvotequorum8"]);
  const agent = read("docker/Dockerfile.agent");
  for (const pkg of sonames) assert.match(agent, new RegExp(`\\b${pkg}\\b`));
  // What the agent runs at run time: ping (test IP), arping and ip (cluster IP), rsync (file sync).
  for (const pkg of ["corosync", "iputils-ping", "iputils-arping", "iproute2", "rsync"]) assert.match(agent, new RegExp(`\\b${pkg}\\b`));
});

test("the node entrypoint is executable and passes sh -n (and shellcheck when installed)", () => {
  const path = join(ROOT, "docker/node-entrypoint.sh");
  assert.ok(statSync(path).mode & 0o111, "not executable");
  assert.equal(spawnSync("sh", ["-n", path]).status, 0);
  const sc = spawnSync("shellcheck", [path], { encoding: "utf8" });
  if (sc.error === undefined) assert.equal(sc.status, 0, sc.stdout);
});

test("compose.yaml: every build and file it names exists, nodes share storage and the cluster volume", (t) => {
  const py = spawnSync("python3", ["-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", join(ROOT, "docker/compose.yaml")], { encoding: "utf8" });
  if (py.status !== 0) return t.skip("no python3 with PyYAML to parse compose.yaml");
  type Service = { build?: { context: string; dockerfile: string }; entrypoint?: string[]; volumes?: string[]; networks?: Record<string, { ipv4_address: string }>; cap_add?: string[] };
  const compose = JSON.parse(py.stdout) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  for (const [name, s] of Object.entries(compose.services)) {
    if (s.build) assert.ok(existsSync(join(ROOT, "docker", s.build.context, s.build.dockerfile)), `${name}: ${s.build.dockerfile}`);
    for (const v of s.volumes ?? []) assert.ok(v.split(":")[0]! in compose.volumes, `${name}: volume ${v} is not declared`);
  }
  assert.ok(existsSync(join(ROOT, compose.services["cluster-init"]!.entrypoint!.at(-2)!)));
  for (const n of ["n1", "n2", "n3"]) {
    const s = compose.services[n]!;
    assert.ok(s.volumes?.includes("storage:/shared") && s.volumes.includes("cluster:/cluster:ro"), `${n} volumes: ${s.volumes}`);
    assert.ok(s.cap_add?.includes("NET_ADMIN"));
  }
});

test("docker/src/init-cluster.ts writes a crypto-on corosync.conf and an authkey once", () => {
  const dir = mkdtempSync(join(tmpdir(), "init-cluster-"));
  try {
    const env = { ...process.env, NODES: "1:10.89.0.11:30,2:10.89.0.12:20,3:10.89.0.13:10" };
    const r = spawnSync("node", ["--import", "tsx", "docker/src/init-cluster.ts", dir], { cwd: ROOT, env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const conf = readClusterConfig(parseCorosyncConf(readFileSync(join(dir, "corosync.conf"), "utf8")));
    assert.equal(conf.crypto.cipher, "aes256");
    assert.deepEqual(conf.nodes.map((n) => [n.nodeid, n.ring0Addr, n.prio]), [[1, "10.89.0.11", 30], [2, "10.89.0.12", 20], [3, "10.89.0.13", 10]]);
    const key = readFileSync(join(dir, "authkey"));
    assert.equal(key.length, 256);
    spawnSync("node", ["--import", "tsx", "docker/src/init-cluster.ts", dir], { cwd: ROOT, env });
    assert.deepEqual(readFileSync(join(dir, "authkey")), key, "a second run must keep the key");
    const bad = spawnSync("node", ["--import", "tsx", "docker/src/init-cluster.ts", dir], { cwd: ROOT, env: { ...process.env, NODES: "1:10.0.0.1" }, encoding: "utf8" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /at least two nodes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the operations docs (linked from the README) document the docker files and say what was tested", () => {
  const readme = read("docs/operations.md");
  for (const s of ["docker/Dockerfile.agent", "docker/Dockerfile.panel", "docker/compose.yaml", "docker build -f docker/Dockerfile.agent", "docker compose -f docker/compose.yaml up --build"]) {
    assert.ok(readme.includes(s), `README does not mention ${s}`);
  }
  assert.match(readme, /not built or run here/i);
});
