import { test } from "node:test";
import assert from "node:assert/strict";
import { inverseOf, loadMigrations, planMigrations, sha256, splitStatements, tablesAfter, type JournalRow, type Migration } from "../src/migrations.ts";
import { parseDbUrl, redact } from "../src/connection.ts";

const files = loadMigrations();
const applied = (ms: Migration[]): JournalRow[] => ms.map((m) => ({ idx: m.idx, tag: m.tag, checksum: m.checksum, state: "applied", done: m.statements.length, total: m.statements.length }));
const allTables = [...tablesAfter(files)];
const latest = files.at(-1)!.tag;

test("the generated migrations create the product's tables", () => {
  assert.deepEqual([...tablesAfter(files)].sort(), ["cluster_settings", "file_sync", "incidents", "nodes", "sessions", "users", "vms"]);
  assert.ok(files[0]!.statements.every((s) => !s.includes("statement-breakpoint")));
});

test("splitStatements drops breakpoints, trailing semicolons and blanks", () => {
  assert.deepEqual(splitStatements("CREATE TABLE `a` (x int);\n--> statement-breakpoint\nCREATE INDEX `i` ON `a` (`x`);--> statement-breakpoint\n"), [
    "CREATE TABLE `a` (x int)",
    "CREATE INDEX `i` ON `a` (`x`)",
  ]);
});

test("an empty database gets every migration", () => {
  assert.deepEqual(planMigrations("ha", files, [], []).pending.map((m) => m.tag), files.map((m) => m.tag));
});

test("an up-to-date database gets nothing", () => {
  const p = planMigrations("ha", files, [...allTables, "_ha_migrations"], applied(files));
  assert.equal(p.pending.length, 0);
});

test("unexpected tables are refused with their names", () => {
  assert.throws(() => planMigrations("ha", files, ["wp_posts", "nodes"], []), /has tables this product does not expect before any migration: nodes, wp_posts; refusing/);
  assert.throws(() => planMigrations("ha", files, [...allTables, "_ha_migrations", "extra"], applied(files)), new RegExp(`does not expect after ${latest}: extra`));
});

test("an edited, interrupted, unknown or damaged migration is refused", () => {
  const rows = applied(files);
  const initTables = [...tablesAfter(files.slice(0, 1))];
  assert.throws(() => planMigrations("ha", files, initTables, [{ ...rows[0]!, checksum: sha256("x") }]), /was changed after it was applied/);
  assert.throws(() => planMigrations("ha", files, initTables, [{ ...rows[0]!, state: "applying", done: 2 }]), /was interrupted after 2 of/);
  assert.throws(() => planMigrations("ha", files, allTables, [...rows, { ...rows[0]!, idx: files.length, tag: "9999_future" }]), /migrated by a newer version/);
  assert.throws(() => planMigrations("ha", files, allTables.filter((t) => t !== "vms"), rows), new RegExp(`lacks tables that ${latest} created: vms`));
});

test("inverses exist only for statements that can be undone without losing data", () => {
  assert.deepEqual(inverseOf("CREATE TABLE `t` (x int)"), ["DROP TABLE `t`"]);
  assert.deepEqual(inverseOf("CREATE INDEX `i` ON `t` (`x`)"), ["DROP INDEX `i` ON `t`"]);
  assert.deepEqual(inverseOf("ALTER TABLE `vms` ADD `ip` varchar(45)"), ["ALTER TABLE `vms` DROP COLUMN `ip`"]);
  assert.deepEqual(inverseOf("ALTER TABLE `vms` ADD COLUMN `ip` varchar(45)"), ["ALTER TABLE `vms` DROP COLUMN `ip`"]);
  assert.equal(inverseOf("ALTER TABLE `vms` ADD CONSTRAINT `c` CHECK (x > 0)"), null);
  assert.equal(inverseOf("ALTER TABLE `t` DROP COLUMN `x`"), null);
  assert.equal(inverseOf("DROP TABLE `t`"), null);
});

test("database URLs are parsed and validated", () => {
  assert.deepEqual(parseDbUrl("mysql://ha:s%40cret@10.0.0.1:3307/ha", {}), { host: "10.0.0.1", port: 3307, user: "ha", password: "s@cret", database: "ha", socketPath: undefined });
  const s = parseDbUrl("mysql://root@localhost/ha?socket=/run/mysqld/mysqld.sock", { DB_PASSWORD: "pw" });
  assert.equal(s.socketPath, "/run/mysqld/mysqld.sock");
  assert.equal(s.password, "pw");
  assert.throws(() => parseDbUrl("postgres://x@y/z"), /must start with mysql:\/\//);
  assert.throws(() => parseDbUrl("mysql://root@localhost/bad-name"), /database: a database name is 1-64 letters/);
  assert.equal(redact("mysql://u:secret@h/d"), "mysql://u:***@h/d");
});
