export * as schema from "./schema.ts";
export * from "./schema.ts";
export { DbTarget, parseDbUrl, connectServer, describe as describeTarget, redact, quoteIdent } from "./connection.ts";
export { migrate, migrationStatus, type MigrateOptions, type MigrateResult } from "./migrate.ts";
export { loadMigrations, planMigrations, MigrationError, MIGRATIONS_DIR, JOURNAL_TABLE, type Migration } from "./migrations.ts";
export { openDb, type Db } from "./client.ts";
