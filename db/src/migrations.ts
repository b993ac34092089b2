// Reading the drizzle-kit migration files, and the pure planning step of `migrate`.
import { createHash } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../migrations");
/** Our own bookkeeping table; it is not part of the schema and never appears in migrations. */
export const JOURNAL_TABLE = "_ha_migrations";

export type Migration = { idx: number; tag: string; checksum: string; statements: string[] };

const Journal = z.object({
  dialect: z.literal("mysql"),
  entries: z.array(z.object({ idx: z.number().int().nonnegative(), tag: z.string().regex(/^[\w-]+$/) })),
});

/** Loads the migrations listed in drizzle-kit's journal, in order, with their checksums. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const journalPath = join(dir, "meta", "_journal.json");
  if (!existsSync(journalPath)) throw new Error(`no migration journal at ${journalPath} (run drizzle-kit generate in db/)`);
  const parsed = Journal.safeParse(JSON.parse(readFileSync(journalPath, "utf8")));
  if (!parsed.success) throw new Error(`${journalPath} is not a drizzle-kit mysql journal: ${parsed.error.message}`);
  return parsed.data.entries.map((e, i) => {
    if (e.idx !== i) throw new Error(`${journalPath}: entry ${i} has idx ${e.idx}; migrations must be numbered 0, 1, 2, ...`);
    const sql = readFileSync(join(dir, `${e.tag}.sql`), "utf8");
    return { idx: e.idx, tag: e.tag, checksum: sha256(sql), statements: splitStatements(sql) };
  });
}

export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** drizzle-kit separates statements with `--> statement-breakpoint`. */
export function splitStatements(sql: string): string[] {
  return sql
    .split("--> statement-breakpoint")
    .map((s) => s.trim().replace(/;\s*$/, "").trim())
    .filter((s) => s.length > 0);
}

/** How a statement changes the set of tables (enough to know which tables a version has). */
export function tableEffect(stmt: string): { create?: string; drop?: string; rename?: [string, string] } {
  let m = /^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`([^`]+)`/i.exec(stmt);
  if (m) return { create: m[1]! };
  m = /^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?`([^`]+)`/i.exec(stmt);
  if (m) return { drop: m[1]! };
  m = /^(?:RENAME\s+TABLE\s+`([^`]+)`\s+TO\s+`([^`]+)`|ALTER\s+TABLE\s+`([^`]+)`\s+RENAME\s+TO\s+`([^`]+)`)/i.exec(stmt);
  if (m) return { rename: [(m[1] ?? m[3])!, (m[2] ?? m[4])!] };
  return {};
}

/** Tables that exist after applying `migrations` to an empty database. */
export function tablesAfter(migrations: Migration[]): Set<string> {
  const tables = new Set<string>();
  for (const m of migrations) {
    for (const s of m.statements) {
      const e = tableEffect(s);
      if (e.create) tables.add(e.create);
      if (e.drop) tables.delete(e.drop);
      if (e.rename) {
        tables.delete(e.rename[0]);
        tables.add(e.rename[1]);
      }
    }
  }
  return tables;
}

/** A row of the journal table. */
export type JournalRow = { idx: number; tag: string; checksum: string; state: "applying" | "applied"; done: number; total: number };

export type Plan = { applied: Migration[]; pending: Migration[] };

/** A refusal to touch the database; the message says what is wrong and what to do. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

/**
 * Decides what to apply, or refuses with a clear reason. Pure: the inputs are the migration files,
 * the tables the database has now and the journal rows it holds.
 */
export function planMigrations(database: string, files: Migration[], tables: string[], journal: JournalRow[]): Plan {
  const rows = [...journal].sort((a, b) => a.idx - b.idx);
  for (const [i, row] of rows.entries()) {
    const file = files[i];
    if (row.idx !== i) throw new MigrationError(`database ${database}: the migration journal has a gap before ${row.tag} (idx ${row.idx}, expected ${i})`);
    if (!file) {
      throw new MigrationError(
        `database ${database} was migrated by a newer version of this product (it has ${row.tag}, unknown here); upgrade this node instead of downgrading the schema`,
      );
    }
    if (row.tag !== file.tag) throw new MigrationError(`database ${database}: migration ${i} is ${row.tag} in the database but ${file.tag} in the files`);
    if (row.checksum !== file.checksum) {
      throw new MigrationError(
        `database ${database}: migration ${row.tag} was changed after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ${file.checksum.slice(0, 12)} in the file); never edit an applied migration, generate a new one`,
      );
    }
    if (row.state !== "applied") {
      throw new MigrationError(
        `database ${database}: migration ${row.tag} was interrupted after ${row.done} of ${row.total} statements and could not be undone; restore the database from a backup or a replica, or finish it by hand and mark it applied in ${JOURNAL_TABLE}`,
      );
    }
  }
  const applied = files.slice(0, rows.length);
  const expected = tablesAfter(applied);
  const present = new Set(tables.filter((t) => t !== JOURNAL_TABLE));
  const unexpected = [...present].filter((t) => !expected.has(t)).sort();
  const missing = [...expected].filter((t) => !present.has(t)).sort();
  if (unexpected.length > 0) {
    const at = applied.length ? `after ${applied.at(-1)!.tag}` : "before any migration";
    throw new MigrationError(
      `database ${database} has tables this product does not expect ${at}: ${unexpected.join(", ")}; refusing to migrate. Point the product at its own (empty) database, or remove those tables`,
    );
  }
  if (missing.length > 0) {
    throw new MigrationError(`database ${database} lacks tables that ${applied.at(-1)?.tag} created: ${missing.join(", ")}; refusing to migrate a damaged schema`);
  }
  return { applied, pending: files.slice(rows.length) };
}

/**
 * SQL that undoes a statement we applied, when there is a safe inverse (no data can be lost by it),
 * or null. Used to put the database back as it was when a migration fails half-way.
 */
export function inverseOf(stmt: string): string[] | null {
  let m = /^CREATE\s+TABLE\s+`([^`]+)`/i.exec(stmt);
  if (m) return [`DROP TABLE \`${m[1]}\``];
  m = /^CREATE\s+(?:UNIQUE\s+)?INDEX\s+`([^`]+)`\s+ON\s+`([^`]+)`/i.exec(stmt);
  if (m) return [`DROP INDEX \`${m[1]}\` ON \`${m[2]}\``];
  // A column this migration just added holds no data anyone wrote yet: dropping it loses nothing.
  m = /^ALTER\s+TABLE\s+`([^`]+)`\s+ADD\s+(?:COLUMN\s+)?`([^`]+)`\s/i.exec(stmt);
  if (m) return [`ALTER TABLE \`${m[1]}\` DROP COLUMN \`${m[2]}\``];
  m = /^ALTER\s+TABLE\s+`([^`]+)`\s+ADD\s+CONSTRAINT\s+`([^`]+)`\s+FOREIGN\s+KEY/i.exec(stmt);
  // Adding a foreign key may also have created an index of the same name.
  if (m) return [`ALTER TABLE \`${m[1]}\` DROP FOREIGN KEY \`${m[2]}\``, `ALTER TABLE \`${m[1]}\` DROP INDEX IF EXISTS \`${m[2]}\``];
  return null;
}
