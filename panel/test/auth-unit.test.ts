// Pure parts of auth: the login limiter's windows and the session expiry rules, on a fake clock
// (the DB-backed session store is tested in sessions.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LoginLimiter } from "../server/auth/rate-limit.ts";
import { hashSessionId, isExpired, needsDbCheck } from "../server/auth/sessions.ts";
import { hashPassword, verifyPassword } from "../server/auth/passwords.ts";

test("limiter: locks (ip, user) after 5 failures until the window ends; per-IP cap across users", () => {
  let now = 0;
  const l = new LoginLimiter(5, 8, 60_000, () => now);
  for (let i = 0; i < 5; i++) (assert.equal(l.check("1.1.1.1", "Alice").ok, true), l.fail("1.1.1.1", "alice"));
  const v = l.check("1.1.1.1", "ALICE");
  assert.equal(v.ok, false, "usernames are compared case-insensitively");
  assert.equal(!v.ok && v.retryAfterS, 60);
  assert.equal(l.check("2.2.2.2", "alice").ok, true, "another address is not locked");
  for (let i = 0; i < 3; i++) l.fail("1.1.1.1", `u${i}`);
  assert.equal(l.check("1.1.1.1", "bob").ok, false, "8 failures from one address lock it for every user");
  now = 60_000;
  assert.equal(l.check("1.1.1.1", "alice").ok, true, "the window ended");
});

test("limiter: a success clears that user's failures", () => {
  const l = new LoginLimiter(3, 100, 60_000, () => 0);
  l.fail("ip", "a");
  l.fail("ip", "a");
  l.succeed("ip", "a");
  l.fail("ip", "a");
  l.fail("ip", "a");
  assert.equal(l.check("ip", "a").ok, true);
});

test("sessions: idle and absolute expiry; when the DB copy is re-checked (pure)", () => {
  const t = { idleMs: 1000, maxAgeMs: 5000 };
  assert.equal(isExpired({ createdAt: 0, lastSeen: 900 }, 1900, t), false, "idle exactly 1000 ms is still alive");
  assert.equal(isExpired({ createdAt: 0, lastSeen: 900 }, 1901, t), true, "idled out");
  assert.equal(isExpired({ createdAt: 0, lastSeen: 4900 }, 5000, t), false);
  assert.equal(isExpired({ createdAt: 0, lastSeen: 5000 }, 5001, t), true, "absolute limit, however active");
  assert.equal(needsDbCheck(0, 29_999, 30_000), false);
  assert.equal(needsDbCheck(0, 30_000, 30_000), true);
  assert.match(hashSessionId("x"), /^[0-9a-f]{64}$/);
});

test("passwords are argon2id PHC strings; wrong and missing users fail", async () => {
  const h = await hashPassword("a long enough password");
  assert.match(h, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.equal(await verifyPassword(h, "a long enough password"), true);
  assert.equal(await verifyPassword(h, "wrong"), false);
  assert.equal(await verifyPassword(null, "anything"), false);
  assert.equal(await verifyPassword("$2b$10$bcrypt-hash", "anything"), false);
});
