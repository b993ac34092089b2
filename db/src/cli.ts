// ha-db: `migrate` brings the database to the newest schema, `status` shows where it is.
//   node --import tsx db/src/cli.ts migrate --url mysql://root@localhost/ha?socket=/run/mysqld/mysqld.sock
// The URL may also come from DATABASE_URL, the password from DB_PASSWORD.
import { parseArgs } from "node:util";
import { parseDbUrl, redact } from "./connection.ts";
import { migrate, migrationStatus } from "./migrate.ts";
import { MigrationError } from "./migrations.ts";

const USAGE = "usage: ha-db <migrate|status> [--url mysql://user@host:port/db] [--json]";

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { url: { type: "string" }, json: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  const cmd = positionals[0];
  if (values.help || (cmd !== "migrate" && cmd !== "status")) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }
  const url = values.url ?? process.env.DATABASE_URL;
  if (!url) {
    console.error(`no database given: pass --url or set DATABASE_URL\n${USAGE}`);
    return 2;
  }
  const target = parseDbUrl(url);
  if (cmd === "status") {
    const s = await migrationStatus(target);
    if (values.json) console.log(JSON.stringify(s));
    else {
      console.log(`database ${s.database} at ${redact(url)}: ${s.exists ? `schema ${s.current ?? "empty"}` : "does not exist yet"}`);
      if (s.problem) console.log(`problem: ${s.problem}`);
      else console.log(s.pending.length ? `pending: ${s.pending.join(", ")}` : "up to date");
    }
    return s.problem ? 1 : 0;
  }
  const r = await migrate(target, { log: (m) => !values.json && console.log(m) });
  if (values.json) console.log(JSON.stringify(r));
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(err instanceof MigrationError ? `migration refused: ${err.message}` : `error: ${err.message}`);
      process.exit(1);
    },
  );
}
