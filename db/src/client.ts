// A Drizzle client over a mysql2 pool, for the panel and the agent.
import { drizzle } from "drizzle-orm/mysql2";
import mysql from "mysql2/promise";
import * as schema from "./schema.ts";
import type { DbTarget } from "./connection.ts";

export function openDb(t: DbTarget, opts: { connectionLimit?: number } = {}) {
  const pool = mysql.createPool({
    host: t.socketPath ? undefined : t.host,
    port: t.port,
    socketPath: t.socketPath,
    user: t.user,
    password: t.password,
    database: t.database,
    connectionLimit: opts.connectionLimit ?? 5,
    connectTimeout: 5000,
  });
  return { db: drizzle(pool, { schema, mode: "default" }), pool, close: () => pool.end() };
}
export type Db = ReturnType<typeof openDb>["db"];
