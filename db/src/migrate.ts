// Applies the SQL migrations. MariaDB DDL is not transactional, so a migration is made safe by:
//  1. refusing a database that is not in a state we know (unexpected tables, edited or
//     interrupted migrations, a read-only replica), before touching anything;
//  2. a rehearsal: the pending migrations first run on an unreplicated scratch copy (schema and
//     data) of the database, so SQL or data errors surface while the real one is untouched;
//  3. a journal row per migration (checksum, statements done) and, if a statement still fails on
//     the real database, undoing the statements already applied (each has a safe inverse).
import { randomBytes } from "node:crypto";
import type mysql from "mysql2/promise";
import { connectServer, describe, quoteIdent as q, type DbTarget } from "./connection.ts";
import { inverseOf, JOURNAL_TABLE, loadMigrations, MigrationError, planMigrations, type JournalRow, type Migration, type Plan } from "./migrations.ts";

export type MigrateOptions = {
  /** Create the database when it does not exist (default true). */
  create?: boolean;
  /** Migration files (default: db/migrations). */
  migrations?: Migration[];
  log?: (msg: string) => void;
  /** Test hook: called before each statement on the real database; throwing simulates a failure. */
  beforeStatement?: (m: Migration, i: number) => void;
};

export type MigrateResult = { database: string; applied: string[]; current: string | null };

type Row = Record<string, unknown>;
async function query(c: mysql.Connection, sql: string, params: unknown[] = []): Promise<Row[]> {
  const [rows] = await c.query(sql, params);
  return Array.isArray(rows) ? (rows as Row[]) : [];
}

/** What `status` shows: current version, pending migrations, or why migrate would refuse. */
export async function migrationStatus(t: DbTarget, migrations = loadMigrations()): Promise<{ database: string; exists: boolean; current: string | null; pending: string[]; problem?: string }> {
  const c = await connectServer(t);
  try {
    const exists = (await query(c, "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [t.database])).length > 0;
    if (!exists) return { database: t.database, exists, current: null, pending: migrations.map((m) => m.tag) };
    try {
      const plan = planMigrations(t.database, migrations, await listTables(c, t.database), await readJournal(c, t.database));
      return { database: t.database, exists, current: plan.applied.at(-1)?.tag ?? null, pending: plan.pending.map((m) => m.tag) };
    } catch (err) {
      if (!(err instanceof MigrationError)) throw err;
      return { database: t.database, exists, current: null, pending: [], problem: err.message };
    }
  } finally {
    await c.end();
  }
}

/** Brings the database to the newest schema, or throws leaving it as it was. */
export async function migrate(t: DbTarget, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const log = opts.log ?? (() => undefined);
  const files = opts.migrations ?? loadMigrations();
  const c = await connectServer(t);
  const lock = `ha_migrate:${t.database}`;
  try {
    // Two nodes starting at once must not both migrate.
    const [got] = await query(c, "SELECT GET_LOCK(?, 30) AS ok", [lock]);
    if (got?.ok !== 1) throw new MigrationError(`another migration of ${t.database} is running (lock ${lock} held for 30 s)`);
    const [ro] = await query(c, "SELECT @@global.read_only AS ro");
    if (Number(ro?.ro) !== 0) throw new MigrationError(`${describe(t)}: the server is read-only (a replica); migrations run on the primary only`);

    const exists = (await query(c, "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [t.database])).length > 0;
    if (!exists) {
      if (opts.create === false) throw new MigrationError(`database ${t.database} does not exist on ${describe(t)}`);
      await c.query(`CREATE DATABASE ${q(t.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      log(`created database ${t.database}`);
    }
    await c.query(`USE ${q(t.database)}`);
    const tables = await listTables(c, t.database);
    const plan = planMigrations(t.database, files, tables, await readJournal(c, t.database));
    const result = (applied: string[]): MigrateResult => ({ database: t.database, applied, current: (plan.pending.at(-1) ?? plan.applied.at(-1))?.tag ?? null });
    if (plan.pending.length === 0) {
      log(`database ${t.database} is up to date (${plan.applied.at(-1)?.tag ?? "empty"})`);
      return { database: t.database, applied: [], current: plan.applied.at(-1)?.tag ?? null };
    }
    await rehearse(c, t.database, tables, plan);
    log(`rehearsal of ${plan.pending.map((m) => m.tag).join(", ")} passed`);
    await ensureJournal(c);
    for (const m of plan.pending) {
      await applyOne(c, t.database, m, opts.beforeStatement);
      log(`applied ${m.tag} (${m.statements.length} statements)`);
    }
    return result(plan.pending.map((m) => m.tag));
  } finally {
    await query(c, "SELECT RELEASE_LOCK(?)", [lock]).catch(() => undefined);
    await c.end().catch(() => undefined);
  }
}

async function listTables(c: mysql.Connection, db: string): Promise<string[]> {
  const rows = await query(c, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ?", [db]);
  return rows.map((r) => String(r.t));
}

async function readJournal(c: mysql.Connection, db: string): Promise<JournalRow[]> {
  const has = await query(c, "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [db, JOURNAL_TABLE]);
  if (has.length === 0) return [];
  const rows = await query(c, `SELECT idx, tag, checksum, state, done, total FROM ${q(db)}.${q(JOURNAL_TABLE)} ORDER BY idx`);
  return rows.map((r) => ({
    idx: Number(r.idx),
    tag: String(r.tag),
    checksum: String(r.checksum),
    state: r.state === "applied" ? "applied" : "applying",
    done: Number(r.done),
    total: Number(r.total),
  }));
}

async function ensureJournal(c: mysql.Connection) {
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${q(JOURNAL_TABLE)} (
      idx int unsigned NOT NULL PRIMARY KEY,
      tag varchar(128) NOT NULL,
      checksum char(64) NOT NULL,
      state enum('applying','applied') NOT NULL,
      done int unsigned NOT NULL,
      total int unsigned NOT NULL,
      started_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
      finished_at datetime(3) NULL
    )`,
  );
}

/**
 * Runs the pending migrations on a scratch copy of the database. sql_log_bin=0 keeps the copy off
 * the binlog, so replicas never see it and no GTID is spent on it.
 */
async function rehearse(c: mysql.Connection, db: string, tables: string[], plan: Plan) {
  const scratch = `_ha_rehearse_${randomBytes(4).toString("hex")}`;
  await c.query("SET SESSION sql_log_bin = 0");
  try {
    await c.query(`CREATE DATABASE ${q(scratch)}`);
    await c.query(`USE ${q(scratch)}`);
    await c.query("SET SESSION foreign_key_checks = 0");
    const userTables = tables.filter((t) => t !== JOURNAL_TABLE);
    for (const t of userTables) {
      const [row] = await query(c, `SHOW CREATE TABLE ${q(db)}.${q(t)}`);
      await c.query(String(row?.["Create Table"]));
    }
    for (const t of userTables) await c.query(`INSERT INTO ${q(scratch)}.${q(t)} SELECT * FROM ${q(db)}.${q(t)}`);
    await c.query("SET SESSION foreign_key_checks = 1");
    for (const m of plan.pending) {
      for (const [i, stmt] of m.statements.entries()) {
        try {
          await c.query(stmt);
        } catch (err) {
          throw new MigrationError(
            `migration ${m.tag} fails at statement ${i + 1} of ${m.statements.length} (${(err as Error).message}); found in a rehearsal on a copy, the database ${db} was not changed`,
          );
        }
      }
    }
  } finally {
    await c.query(`DROP DATABASE IF EXISTS ${q(scratch)}`).catch(() => undefined);
    await c.query("SET SESSION foreign_key_checks = 1").catch(() => undefined);
    await c.query(`USE ${q(db)}`);
    await c.query("SET SESSION sql_log_bin = 1");
  }
}

async function applyOne(c: mysql.Connection, db: string, m: Migration, beforeStatement?: MigrateOptions["beforeStatement"]) {
  const journal = `${q(db)}.${q(JOURNAL_TABLE)}`;
  await c.query(`INSERT INTO ${journal} (idx, tag, checksum, state, done, total) VALUES (?, ?, ?, 'applying', 0, ?)`, [m.idx, m.tag, m.checksum, m.statements.length]);
  const done: string[] = [];
  for (const [i, stmt] of m.statements.entries()) {
    try {
      beforeStatement?.(m, i);
      await c.query(stmt);
    } catch (err) {
      const why = `migration ${m.tag} failed at statement ${i + 1} of ${m.statements.length}: ${(err as Error).message}`;
      const undone = await undo(c, done);
      if (undone) {
        await c.query(`DELETE FROM ${journal} WHERE idx = ?`, [m.idx]);
        throw new MigrationError(`${why}; its ${done.length} earlier statement(s) were undone, the database ${db} is as it was`);
      }
      throw new MigrationError(`${why}; the statements before it could not all be undone, so ${db} is left marked as interrupted in ${JOURNAL_TABLE}: ${undoHint(done)}`);
    }
    done.push(stmt);
    await c.query(`UPDATE ${journal} SET done = ? WHERE idx = ?`, [done.length, m.idx]);
  }
  await c.query(`UPDATE ${journal} SET state = 'applied', finished_at = CURRENT_TIMESTAMP(3) WHERE idx = ?`, [m.idx]);
}

/** Undoes applied statements, newest first; false if one has no safe inverse or its inverse fails. */
async function undo(c: mysql.Connection, done: string[]): Promise<boolean> {
  const inverses = done.map(inverseOf);
  if (inverses.some((x) => x === null)) return false;
  try {
    for (const inv of inverses.reverse()) for (const s of inv!) await c.query(s);
    return true;
  } catch {
    return false;
  }
}

function undoHint(done: string[]): string {
  return done.filter((s) => inverseOf(s) === null).map((s) => s.split("\n")[0]).join("; ") || "an undo statement failed";
}
