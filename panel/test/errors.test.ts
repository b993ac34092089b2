// Which errors mean "the database is away for now" (503 + Retry-After) and which are bugs (500),
// on errors shaped like mysql2's and drizzle's; and what the error middleware sends for each.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import express from "express";
import { pino } from "pino";
import { Writable } from "node:stream";
import { DrizzleQueryError } from "drizzle-orm";
import { dbUnavailableReason, errorHandler, HttpError } from "../server/errors.ts";

/** An error as mysql2 makes it: Error + code (+ errno, sqlState, fatal, syscall). */
const mysqlErr = (message: string, extra: Record<string, unknown>) => Object.assign(new Error(message), extra);
const READ_ONLY = mysqlErr("The MariaDB server is running with the --read-only option so it cannot execute this statement", { code: "ER_OPTION_PREVENTS_STATEMENT", errno: 1290, sqlState: "HY000" });
const wrap = (cause: Error) => new DrizzleQueryError("insert into `sessions` (`id_hash`) values (?)", ["deadbeef"], cause);

test("classifier: the DB being promoted (read-only), unreachable or overloaded is 'unavailable', also wrapped by drizzle", () => {
  const cases: Array<[Error, string]> = [
    [READ_ONLY, "read-only"],
    [mysqlErr("connect ECONNREFUSED 127.0.0.1:3306", { code: "ECONNREFUSED", errno: -111, syscall: "connect", fatal: true }), "connection refused"],
    [mysqlErr("connect ENOENT /run/mysqld/mysqld.sock", { code: "ENOENT", errno: -2, syscall: "connect", fatal: true }), "no database socket"],
    [mysqlErr("connect ETIMEDOUT", { code: "ETIMEDOUT", errorno: "ETIMEDOUT", fatal: true }), "connection timed out"],
    [mysqlErr("read ECONNRESET", { code: "ECONNRESET", errno: -104, syscall: "read", fatal: true }), "connection reset"],
    [mysqlErr("Connection lost: The server closed the connection.", { code: "PROTOCOL_CONNECTION_LOST", fatal: true }), "connection lost"],
    [mysqlErr("Can't add new command when connection is in closed state", { fatal: true }), "connection lost"],
    [mysqlErr("Too many connections", { code: "ER_CON_COUNT_ERROR", errno: 1040 }), "too many connections"],
    [mysqlErr("Lock wait timeout exceeded; try restarting transaction", { code: "ER_LOCK_WAIT_TIMEOUT", errno: 1205 }), "lock wait timeout"],
    [mysqlErr("Server shutdown in progress", { code: "ER_SERVER_SHUTDOWN", errno: 1053 }), "server shutting down"],
  ];
  for (const [err, reason] of cases) {
    assert.equal(dbUnavailableReason(err), reason, `${(err as { code?: string }).code ?? err.message}`);
    assert.equal(dbUnavailableReason(wrap(err)), reason, `drizzle-wrapped ${(err as { code?: string }).code ?? err.message}`);
  }
  // errno alone (a driver that names codes differently) is enough for read-only.
  assert.equal(dbUnavailableReason({ errno: 1290, message: "running with the --read-only option" }), "read-only");
  // Node's happy-eyeballs connect: an AggregateError of per-address refusals.
  const agg = Object.assign(new AggregateError([mysqlErr("connect ECONNREFUSED ::1:3306", { code: "ECONNREFUSED", syscall: "connect" })], ""), { fatal: true });
  assert.equal(dbUnavailableReason(wrap(agg)), "connection refused");
});

test("classifier: everything else is not 'unavailable' (a 500)", () => {
  const others: unknown[] = [
    new Error("boom"),
    new TypeError("Cannot read properties of undefined (reading 'id')"),
    mysqlErr("Duplicate entry 'web1' for key 'name'", { code: "ER_DUP_ENTRY", errno: 1062 }),
    mysqlErr("You have an error in your SQL syntax", { code: "ER_PARSE_ERROR", errno: 1064 }),
    wrap(mysqlErr("Unknown column 'x' in 'field list'", { code: "ER_BAD_FIELD_ERROR", errno: 1054 })),
    // 1290 for another option is not a promotion.
    mysqlErr("The MariaDB server is running with the --secure-file-priv option so it cannot execute this statement", { code: "ER_OPTION_PREVENTS_STATEMENT", errno: 1290 }),
    // A file that is missing is not the DB's socket (no connect, not from a DB connection).
    mysqlErr("ENOENT: no such file or directory, open '/run/corolistener/status.json'", { code: "ENOENT", errno: -2, syscall: "open" }),
    mysqlErr("read ECONNRESET", { code: "ECONNRESET", syscall: "read" }),
    new Error("cannot load the VM record", { cause: mysqlErr("ENOENT: no such file or directory", { code: "ENOENT", syscall: "open" }) }),
    new HttpError(409, "conflict"),
    null,
    undefined,
    "a string",
    42,
  ];
  for (const e of others) assert.equal(dbUnavailableReason(e), null, String((e as Error)?.message ?? e));
  // A cause cycle does not loop.
  const a = new Error("a") as Error & { cause?: unknown };
  a.cause = a;
  assert.equal(dbUnavailableReason(a), null);
});

test("error middleware: 503 + Retry-After + the reason for an unavailable DB, a bare 500 for the rest (no SQL, no stack)", async () => {
  const lines: string[] = [];
  const log = pino({ level: "info" }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  const app = express();
  app.get("/ro", () => {
    throw wrap(READ_ONLY);
  });
  app.get("/bug", () => {
    throw wrap(mysqlErr("Unknown column 'x' in 'field list'", { code: "ER_BAD_FIELD_ERROR", errno: 1054 }));
  });
  app.get("/async", async () => {
    await Promise.resolve();
    throw mysqlErr("connect ECONNREFUSED 127.0.0.1:3306", { code: "ECONNREFUSED", syscall: "connect", fatal: true });
  });
  app.use(errorHandler(log));
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const ro = await fetch(`${base}/ro`);
    assert.equal(ro.status, 503);
    assert.equal(ro.headers.get("retry-after"), "2");
    assert.deepEqual(await ro.json(), { error: "the cluster database is not available right now (read-only); retry in a moment" });
    const refused = await fetch(`${base}/async`);
    assert.equal(refused.status, 503);
    assert.equal((await refused.json()).error, "the cluster database is not available right now (connection refused); retry in a moment");
    const bug = await fetch(`${base}/bug`);
    assert.equal(bug.status, 500);
    assert.equal(bug.headers.get("retry-after"), null);
    const text = await bug.text();
    assert.deepEqual(JSON.parse(text), { error: "internal error" });
    assert.doesNotMatch(text, /select|insert|Unknown column|at /i, "nothing of the SQL or the stack");
    // The log keeps the detail.
    assert.ok(lines.some((l) => l.includes('"database unavailable"') && l.includes("ER_OPTION_PREVENTS_STATEMENT") && l.includes('"level":40')), "a warning with the DB's code");
    assert.ok(lines.some((l) => l.includes('"request failed"') && l.includes("Unknown column")), "the 500's cause is logged");
  } finally {
    server.close();
  }
});
