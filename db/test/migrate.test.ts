// migrate() against a real MariaDB, each test on its own throwaway database.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type mysql from "mysql2/promise";
import { migrate, migrationStatus } from "../src/migrate.ts";
import { loadMigrations, sha256, type Migration } from "../src/migrations.ts";
import { main as cli } from "../src/cli.ts";
import { rootConn, serverAvailable, tablesOf, target, uniqueDbName, SERVER } from "./helpers.ts";

const skip = await serverAvailable();
let root: mysql.Connection;
const made: string[] = [];
const newDb = () => {
  const name = uniqueDbName();
  made.push(name);
  return name;
};

before(async () => {
  if (!skip) root = await rootConn();
});
after(async () => {
  if (skip) return;
  for (const db of made) await root.query(`DROP DATABASE IF EXISTS \`${db}\``);
  await root.end();
});

const files = loadMigrations();
const tags = files.map((f) => f.tag);
const latest = tags.at(-1)!;
const SCHEMA_TABLES = ["_ha_migrations", "cluster_settings", "file_sync", "incidents", "nodes", "sessions", "users", "vms"];
const journalOf = (fs: Migration[]) => fs.map((f) => ({ tag: f.tag, state: "applied", done: f.statements.length, total: f.statements.length }));
const extra = (tag: string, statements: string[]): Migration => ({ idx: files.length, tag, checksum: sha256(statements.join(";")), statements });
const journal = async (db: string) => (await root.query(`SELECT tag, state, done, total FROM \`${db}\`._ha_migrations ORDER BY idx`))[0] as unknown[];

test("migrate creates the schema once, then is a no-op", { skip: skip ?? false }, async () => {
  const db = newDb();
  const r1 = await migrate(target(db));
  assert.deepEqual(r1.applied, tags);
  assert.deepEqual(await tablesOf(root, db), SCHEMA_TABLES);
  assert.deepEqual(await journal(db), journalOf(files));
  const r2 = await migrate(target(db));
  assert.deepEqual(r2, { database: db, applied: [], current: latest });
  assert.deepEqual(await migrationStatus(target(db)), { database: db, exists: true, current: latest, pending: [] });
  // No scratch databases are left behind.
  const [left] = await root.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '\\_ha\\_rehearse\\_%'");
  assert.deepEqual(left, []);
});

test("the schema enforces its rules (argon2id hashes, one settings row, local VMs are not HA)", { skip: skip ?? false }, async () => {
  const db = newDb();
  await migrate(target(db));
  await root.query(`USE \`${db}\``);
  await assert.rejects(root.query("INSERT INTO users (username, password_hash) VALUES ('a', 'plain')"), /users_argon2id/);
  await root.query("INSERT INTO users (username, password_hash, role) VALUES ('a', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', 'admin')");
  await root.query("INSERT INTO cluster_settings (cluster_ip, cluster_ip_prefix, cluster_ip_device, reserve_nodes) VALUES ('10.0.0.100', 24, 'vmbr0', '[]')");
  await assert.rejects(root.query("INSERT INTO cluster_settings (id, cluster_ip, cluster_ip_prefix, cluster_ip_device, reserve_nodes) VALUES (2, 'x', 24, 'vmbr0', '[]')"), /cluster_settings_singleton/);
  await assert.rejects(root.query("INSERT INTO vms (name, ram_mb, vcpus, disk_location, storage, ha) VALUES ('v', 512, 1, '/d', 'local', 1)"), /vms_local_not_ha/);
  await root.query("INSERT INTO nodes (nodeid, name, address) VALUES (1, 'n1', '10.0.0.11')");
  await root.query("INSERT INTO vms (name, nodeid, ram_mb, vcpus, disk_location, storage) VALUES ('v', 1, 512, 1, 'rbd:pool/v', 'network')");
  await root.query("DELETE FROM nodes WHERE nodeid = 1");
  const [[vm]] = (await root.query("SELECT nodeid FROM vms")) as unknown as [[{ nodeid: number | null }]];
  assert.equal(vm.nodeid, null, "deleting a node unplaces its VMs");
});

test("vms: panel-created definitions (pending, requested node as a hint); existing rows count as defined", { skip: skip ?? false }, async () => {
  const db = newDb();
  await migrate(target(db), { migrations: files.filter((f) => f.tag < "0002") });
  await root.query(`USE \`${db}\``);
  await root.query("INSERT INTO nodes (nodeid, name, address) VALUES (1, 'n1', '10.0.0.11')");
  await root.query("INSERT INTO vms (name, ram_mb, vcpus, disk_location, storage) VALUES ('old', 512, 1, '/d', 'network')");
  await migrate(target(db)); // the rest, on a table that has rows
  const [[old]] = (await root.query("SELECT definition_state, ip, requested_nodeid FROM vms WHERE name = 'old'")) as unknown as [[Record<string, unknown>]];
  assert.deepEqual({ ...old }, { definition_state: "defined", ip: null, requested_nodeid: null });
  await root.query("INSERT INTO vms (name, ram_mb, vcpus, disk_location, storage, ip, definition_state, requested_nodeid) VALUES ('new', 256, 1, '/s/new.disk', 'network', '10.0.0.50', 'pending', 1)");
  await assert.rejects(root.query("INSERT INTO vms (name, ram_mb, vcpus, disk_location, storage, requested_nodeid) VALUES ('bad', 256, 1, '/d', 'network', 9)"), /foreign key/i);
  await assert.rejects(root.query("INSERT INTO vms (name, ram_mb, vcpus, disk_location, storage, definition_state) VALUES ('bad', 256, 1, '/d', 'network', 'maybe')"), /definition_state/);
  await root.query("DELETE FROM nodes WHERE nodeid = 1");
  const [[row]] = (await root.query("SELECT requested_nodeid FROM vms WHERE name = 'new'")) as unknown as [[{ requested_nodeid: number | null }]];
  assert.equal(row.requested_nodeid, null, "deleting a node drops it as a request");
});

test("a database with unexpected tables is refused and left untouched", { skip: skip ?? false }, async () => {
  const db = newDb();
  await root.query(`CREATE DATABASE \`${db}\``);
  await root.query(`CREATE TABLE \`${db}\`.wp_posts (id int)`);
  await assert.rejects(migrate(target(db)), /has tables this product does not expect before any migration: wp_posts; refusing to migrate/);
  assert.deepEqual(await tablesOf(root, db), ["wp_posts"]);
  const s = await migrationStatus(target(db));
  assert.match(s.problem ?? "", /wp_posts/);
});

test("a migration that fails on the data is caught in rehearsal: nothing changes", { skip: skip ?? false }, async () => {
  const db = newDb();
  await migrate(target(db));
  await root.query(`INSERT INTO \`${db}\`.nodes (nodeid, name, address, prio) VALUES (1, 'n1', 'a1', 10), (2, 'n2', 'a2', 10)`);
  const bad = extra("9001_unique_prio", ["CREATE TABLE `audit` (id int)", "CREATE UNIQUE INDEX `nodes_prio_uq` ON `nodes` (`prio`)"]);
  await assert.rejects(migrate(target(db), { migrations: [...files, bad] }), /migration 9001_unique_prio fails at statement 2 of 2 \(Duplicate entry.*found in a rehearsal on a copy, the database .* was not changed/);
  assert.deepEqual(await tablesOf(root, db), SCHEMA_TABLES);
  assert.equal((await journal(db)).length, files.length);
});

test("a migration that fails half-way on the real database is undone", { skip: skip ?? false }, async () => {
  const db = newDb();
  await migrate(target(db));
  const m = extra("9001_more", ["CREATE TABLE `t1` (id int)", "CREATE INDEX `t1_id` ON `t1` (`id`)", "CREATE TABLE `t2` (id int)"]);
  const failAt = (n: number) => (mig: Migration, i: number) => {
    if (mig.tag === m.tag && i === n) throw new Error("simulated crash of the statement");
  };
  await assert.rejects(migrate(target(db), { migrations: [...files, m], beforeStatement: failAt(2) }), /failed at statement 3 of 3: simulated crash.*2 earlier statement\(s\) were undone, the database .* is as it was/);
  assert.deepEqual(await tablesOf(root, db), SCHEMA_TABLES);
  assert.equal((await journal(db)).length, files.length);
  // And it applies cleanly afterwards.
  assert.deepEqual((await migrate(target(db), { migrations: [...files, m] })).applied, ["9001_more"]);
});

test("a half-applied migration that cannot be undone is reported, and the next start refuses", { skip: skip ?? false }, async () => {
  const db = newDb();
  await migrate(target(db));
  const m = extra("9001_drop", ["ALTER TABLE `incidents` DROP COLUMN `vm`", "CREATE TABLE `t3` (id int)"]);
  await assert.rejects(
    migrate(target(db), { migrations: [...files, m], beforeStatement: (mig, i) => { if (mig.tag === m.tag && i === 1) throw new Error("disk full"); } }),
    /failed at statement 2 of 2: disk full; the statements before it could not all be undone.*ALTER TABLE `incidents` DROP COLUMN `vm`/,
  );
  await assert.rejects(migrate(target(db), { migrations: [...files, m] }), /migration 9001_drop was interrupted after 1 of 2 statements/);
});

test("the CLI migrates and reports status", { skip: skip ?? false }, async () => {
  const db = newDb();
  const url = `mysql://root@${SERVER.host}:${SERVER.port}/${db}`;
  const logs: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void logs.push(a.join(" "));
  try {
    assert.equal(await cli(["status", "--url", url]), 0);
    assert.equal(await cli(["migrate", "--url", url]), 0);
    assert.equal(await cli(["status", "--url", url, "--json"]), 0);
  } finally {
    console.log = orig;
  }
  assert.match(logs[0]!, /does not exist yet/);
  assert.ok(logs.some((l) => /applied 0000_init/.test(l)));
  assert.deepEqual(JSON.parse(logs.at(-1)!), { database: db, exists: true, current: latest, pending: [] });
});
