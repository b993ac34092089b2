// Where the database is: parsed and validated once, at the boundary.
import mysql from "mysql2/promise";
import { z } from "zod";

export const DbTarget = z
  .object({
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).default(3306),
    socketPath: z.string().min(1).optional(),
    user: z.string().min(1).default("root"),
    password: z.string().optional(),
    database: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, "a database name is 1-64 letters, digits or _"),
  })
  .refine((t) => t.host !== undefined || t.socketPath !== undefined, "give a host or a socketPath");
export type DbTarget = z.output<typeof DbTarget>;

/**
 * Parses `mysql://user:pass@host:port/db` or `mysql://user@localhost/db?socket=/run/mysqld/mysqld.sock`.
 * The password may instead come from the environment (DB_PASSWORD) so it stays out of `ps`.
 */
export function parseDbUrl(url: string, env: NodeJS.ProcessEnv = process.env): DbTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a database URL: "${url}" (expected mysql://user[:password]@host[:port]/database)`);
  }
  if (u.protocol !== "mysql:" && u.protocol !== "mariadb:") throw new Error(`database URL must start with mysql:// or mariadb://, not ${u.protocol}//`);
  const socketPath = u.searchParams.get("socket") ?? undefined;
  const r = DbTarget.safeParse({
    host: socketPath ? undefined : u.hostname || undefined,
    port: u.port ? Number(u.port) : undefined,
    socketPath,
    user: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : env.DB_PASSWORD,
    database: decodeURIComponent(u.pathname.replace(/^\//, "")),
  });
  if (!r.success) throw new Error(`bad database URL ${redact(url)}: ${r.error.issues.map((i) => `${i.path.join(".") || "url"}: ${i.message}`).join("; ")}`);
  return r.data;
}

export const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");

export function describe(t: DbTarget): string {
  return `${t.user}@${t.socketPath ?? `${t.host}:${t.port}`}/${t.database}`;
}

/** A connection with no default database (migrate may have to create it). */
export async function connectServer(t: DbTarget, opts: { connectTimeoutMs?: number } = {}): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection({
      host: t.socketPath ? undefined : t.host,
      port: t.port,
      socketPath: t.socketPath,
      user: t.user,
      password: t.password,
      connectTimeout: opts.connectTimeoutMs ?? 5000,
      multipleStatements: false,
      dateStrings: true,
    });
  } catch (err) {
    throw new Error(`cannot connect to the database server at ${describe(t)}: ${(err as Error).message}`);
  }
}

export const quoteIdent = (name: string) => "`" + name.replace(/`/g, "``") + "`";
