// Throwaway databases on the machine's MariaDB (127.0.0.1:3306, root). Each test makes its own,
// uniquely named, and drops it afterwards; nothing else on the server is touched.
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { DbTarget } from "../src/connection.ts";

export const SERVER = { host: process.env.HA_TEST_DB_HOST ?? "127.0.0.1", port: Number(process.env.HA_TEST_DB_PORT ?? 3306), user: "root" };

export function uniqueDbName(prefix = "hatest"): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

export function target(database: string): DbTarget {
  return DbTarget.parse({ ...SERVER, database });
}

export async function rootConn(): Promise<mysql.Connection> {
  return mysql.createConnection({ ...SERVER });
}

/** Is the test server there? Tests skip (with the reason) when it is not. */
export async function serverAvailable(): Promise<string | null> {
  try {
    const c = await rootConn();
    await c.end();
    return null;
  } catch (err) {
    return `no MariaDB at ${SERVER.host}:${SERVER.port} (${(err as Error).message})`;
  }
}

export async function tablesOf(c: mysql.Connection, db: string): Promise<string[]> {
  const [rows] = await c.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ?", [db]);
  return (rows as Array<{ t: string }>).map((r) => r.t).sort();
}
