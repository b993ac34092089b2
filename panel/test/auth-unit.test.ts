// Pure parts of auth: the login limiter's windows and the session store's expiry, on a fake clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LoginLimiter } from "../server/auth/rate-limit.ts";
import { SessionStore } from "../server/auth/sessions.ts";
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

test("sessions: idle and absolute expiry; ids are unguessable and unique", () => {
  let now = 0;
  const s = new SessionStore(1000, 5000, () => now);
  const a = s.create({ id: 1, username: "a", role: "admin" });
  const b = s.create({ id: 1, username: "a", role: "admin" });
  assert.notEqual(a.id, b.id);
  assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
  now = 900;
  assert.ok(s.get(a.id));
  now = 1800;
  assert.ok(s.get(a.id), "touched at 900, so still alive");
  assert.equal(s.get(b.id), undefined, "b idled out");
  for (now = 2500; now <= 5000; now += 500) assert.ok(s.get(a.id));
  now = 5001;
  assert.equal(s.get(a.id), undefined, "absolute limit");
  const c = s.create({ id: 2, username: "c", role: "viewer" });
  assert.deepEqual(s.destroyUser(2), [c.id]);
  assert.equal(s.get(c.id), undefined);
});

test("passwords are argon2id PHC strings; wrong and missing users fail", async () => {
  const h = await hashPassword("a long enough password");
  assert.match(h, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.equal(await verifyPassword(h, "a long enough password"), true);
  assert.equal(await verifyPassword(h, "wrong"), false);
  assert.equal(await verifyPassword(null, "anything"), false);
  assert.equal(await verifyPassword("$2b$10$bcrypt-hash", "anything"), false);
});
