// End to end: the built UI in Debian's Chromium (driven by playwright-core, no downloaded browser)
// against a local panel with a real MariaDB database and a fake agent status file. Screenshots of
// each main page go to artifacts/screenshots/.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { eq } from "drizzle-orm";
import type { BrowserContext, Page } from "playwright-core";
import { CHROMIUM, launchChromium } from "./chromium.ts";
import { nodes, vms } from "@ha/db";
import { dbAvailable, fakeView, startPanel, type Panel } from "./helpers.ts";

const here = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(here, "../web");
const ROOT = resolve(here, "../..");
const SHOTS = join(ROOT, "artifacts/screenshots");
const ADMIN = { username: "admin", password: "e2e admin password 42" };

const skip = (await dbAvailable()) ?? (existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM}`);

/** Type-checks and builds the UI into panel/web/dist (a fresh clone has none). */
async function buildUi() {
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(WEB, "tsconfig.json")], { stdio: "inherit" });
  const { build } = await import("vite");
  await build({ configFile: join(WEB, "vite.config.ts"), logLevel: "warn" });
  assert.ok(existsSync(join(WEB, "dist/index.html")), "the UI was built");
}

describe("panel UI end to end", { skip: skip ?? false, timeout: 180_000 }, () => {
  let p: Panel;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const consoleErrors: string[] = [];
  /** Chromium logs every 4xx response as a console error; these are the ones a step provokes on purpose. */
  const expectingFailedRequest = async (status: number, step: () => Promise<void>) => {
    const n = consoleErrors.length;
    await step();
    await new Promise((r) => setTimeout(r, 100));
    const added = consoleErrors.splice(n);
    assert.ok(added.length <= 1 && added.every((e) => e.includes(`status of ${status}`)), `unexpected console errors: ${added.join(" | ")}`);
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  before(async () => {
    await buildUi();
    mkdirSync(SHOTS, { recursive: true });
    p = await startPanel({ webDist: join(WEB, "dist") });
    profile = mkdtempSync(join(tmpdir(), "ha-panel-chromium-"));
    ctx = await launchChromium(profile);
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(10_000);
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    // Only the panel on loopback: anything else the page tries is a bug.
    await ctx.route(/^(?!http:\/\/127\.0\.0\.1:)/, (r) => (consoleErrors.push(`unexpected request ${r.request().url()}`), r.abort()));
  });

  after(async () => {
    await ctx?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await p?.stop();
  });

  test("first start: create the admin with the setup token, log out, log in", async () => {
    await page.goto(p.url + "/");
    await page.getByRole("heading", { name: "Create the admin account" }).waitFor();
    await page.getByLabel("Setup token").fill(p.setupToken!);
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Create admin" }).click();
    await page.getByRole("heading", { name: "Cluster" }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password").fill("not the password");
    await expectingFailedRequest(401, async () => {
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("alert").filter({ hasText: "wrong username or password" }).waitFor();
    });
    await shot("login");
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Cluster" }).waitFor();
  });

  test("overview shows the nodes, quorum and master", async () => {
    await page.getByTestId("node-3").waitFor();
    assert.match(await page.getByTestId("node-1").innerText(), /Leader/);
    assert.match(await page.getByTestId("node-2").innerText(), /Member/);
    assert.match(await page.getByTestId("quorum").innerText(), /Quorate · 3\/2 votes/);
    assert.equal(await page.getByTestId("master").innerText(), "n1");
    await page.getByText("Live", { exact: true }).waitFor();
    await shot("overview");
  });

  test("node page: change n2's prio", async () => {
    await page.getByTestId("node-2").getByRole("link").click();
    await page.getByRole("heading", { name: /Node n2/ }).waitFor();
    await page.getByLabel("Priority").fill("150");
    await page.getByRole("button", { name: "Save prio" }).click();
    await page.getByText("Prio saved").waitFor();
    const [row] = await p.db.select().from(nodes).where(eq(nodes.nodeid, 2));
    assert.equal(row?.prio, 150);
    await page.getByText("running with 50 until the master applies it").waitFor();
    await page.getByText("prio 50 -> 150").waitFor();
    await shot("node");
  });

  test("VM list: filter, and toggle web1's HA flag with the keyboard", async () => {
    await page.getByRole("link", { name: "VMs" }).click();
    await page.getByTestId("vm-web1").waitFor();
    await page.getByLabel("Filter by name").fill("web");
    await page.getByTestId("vm-db1").waitFor({ state: "detached" });
    const ha = page.getByLabel("HA for web1");
    assert.equal(await ha.isChecked(), true);
    await ha.focus();
    await page.keyboard.press("Space");
    await page.getByText("HA off for web1").waitFor();
    const [row] = await p.db.select().from(vms).where(eq(vms.name, "web1"));
    assert.equal(row?.ha, false);
    await page.getByLabel("Filter by name").fill("");
    await page.getByTestId("vm-db1").waitFor();
    await shot("vms");
  });

  test("VM list: create a VM with the New VM form; the API's message shows at the field; the row follows pending -> running", async () => {
    await page.getByRole("button", { name: /New VM/ }).click();
    const form = page.getByRole("form", { name: "New VM" });
    await form.getByLabel("Name").fill("9bad");
    await form.getByLabel("Disk path").fill("/run/ha-storage/vms/app1.disk");
    await form.getByLabel("IP address (optional)").fill("10.0.0.70");
    await form.getByLabel("Node (optional)").selectOption({ label: "n2" });
    await expectingFailedRequest(400, async () => {
      await form.getByRole("button", { name: "Create VM" }).click();
      await form.getByRole("alert").filter({ hasText: "name: must be a letter" }).waitFor();
    });
    assert.equal(await form.getByLabel("Name").getAttribute("aria-invalid"), "true");
    await form.getByLabel("Name").fill("app1");
    await form.getByLabel("Name").press("Enter"); // keyboard submit
    await page.getByText("app1 created").waitFor();
    const row = page.getByTestId("vm-app1");
    await row.getByText("definition pending").waitFor();
    await row.getByText("(n2 requested)").waitFor();
    const [stored] = await p.db.select().from(vms).where(eq(vms.name, "app1"));
    assert.deepEqual(
      [stored?.definitionState, stored?.ip, stored?.requestedNodeid, stored?.diskLocation, stored?.ha],
      ["pending", "10.0.0.70", 2, "/run/ha-storage/vms/app1.disk", true],
    );
    await shot("vms-new-pending");
    // What the master's agent does next (vm-sync defines it; n2 could not take it, so the core placed it on n3).
    const note = "n2 could not take it (in maintenance): placed by the cluster";
    await p.db.update(vms).set({ definitionState: "defined", definitionError: note, nodeid: 3, state: "running" }).where(eq(vms.name, "app1"));
    await row.getByText("running").waitFor({ timeout: 5000 });
    await row.getByRole("link", { name: "n3" }).waitFor();
    await row.getByText("(n2 requested)").waitFor();
    await row.getByText(note).waitFor();
    assert.equal(await row.getByText("definition pending").count(), 0);
    // A definition the master could not write shows its reason, and an admin can remove it.
    await p.db.insert(vms).values({ name: "clash1", ramMb: 128, vcpus: 1, diskLocation: "/s/c.disk", storage: "network", definitionState: "failed", definitionError: "a VM named clash1 is already defined on the shared storage" });
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.getByRole("link", { name: "VMs" }).click();
    await page.getByTestId("vm-clash1").getByText("definition failed: a VM named clash1 is already defined").waitFor();
    await shot("vms-new-defined");
    await page.getByRole("button", { name: "Remove clash1" }).click();
    await page.getByTestId("vm-clash1").waitFor({ state: "detached" });
  });

  test("incidents show the failover's phases and the audit trail", async () => {
    await page.getByRole("link", { name: "Incidents" }).click();
    await page.getByText("n1 failed; n2 took over").waitFor();
    await page.getByText("Phases — total 9.45 s").waitFor();
    await page.getByText("web1: HA on -> off").waitFor();
    await shot("incidents");
  });

  test("settings page", async () => {
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByLabel("Cluster IP").waitFor();
    assert.equal(await page.getByLabel("Cluster IP").inputValue(), "10.0.0.100");
    await page.getByLabel("Cluster IP").fill("10.0.0.999");
    await expectingFailedRequest(400, async () => {
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.getByText("clusterIp: not an IPv4 or IPv6 address").waitFor();
    });
    await page.getByLabel("Cluster IP").fill("10.0.0.200");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Settings saved").waitFor();
    await shot("settings");
  });

  test("a status change from the agent shows up live (SSE), without a reload", async () => {
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.getByTestId("node-3").waitFor();
    const marker = await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    const t0 = Date.now();
    await p.setStatus(
      fakeView({
        nodes: [
          { nodeid: 1, prio: 100, status: "leader", isMaster: true, reason: "highest prio (100) among quorate members" },
          { nodeid: 2, prio: 150, status: "network_unstable", isMaster: false, reason: "3 short outages in 10 min" },
          { nodeid: 3, prio: 10, status: "full_failure", isMaster: false, reason: "left the membership and its heartbeat stopped" },
        ],
      }),
    );
    await page.getByTestId("node-3").getByText("Failure").waitFor({ timeout: 2000 });
    await page.getByTestId("node-2").getByText("Network unstable").waitFor({ timeout: 2000 });
    const took = Date.now() - t0;
    assert.ok(took < 1500, `shown after ${took} ms`);
    assert.equal(marker, true);
    assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload), true, "the page was not reloaded");
    await shot("overview-live");
    // No quorum: the UI says changes are refused.
    await p.setStatus(fakeView({ quorate: false }));
    await page.getByRole("alert").filter({ hasText: "no quorum" }).waitFor({ timeout: 2000 });
    await shot("overview-no-quorum");
    await p.setStatus(fakeView());
  });

  test("database health: a healthy replica's card, a diverged one in red with what the cluster does, and the node page", async () => {
    const diverged = "database diverged: being re-cloned from n1";
    await p.db.update(nodes).set({ replication: true }).where(eq(nodes.nodeid, 3));
    await p.setStatus(
      fakeView({
        nodes: [
          { nodeid: 1, prio: 100, status: "leader", isMaster: true, reason: "highest prio (100) among quorate members", dbEligible: true },
          { nodeid: 2, prio: 150, status: "member", isMaster: false, reason: "member", dbEligible: true },
          { nodeid: 3, prio: 10, status: "member", isMaster: false, reason: "member", dbEligible: false, dbReason: diverged },
        ],
      }),
      {
        checkedAt: Date.now(),
        nodes: [
          { nodeid: 1, reachable: true, role: "primary", replication: "none", gtid: "0-1-42" },
          { nodeid: 2, reachable: true, role: "replica", replication: "running", source: "10.0.0.1", lagSeconds: 0, gtid: "0-1-42" },
          { nodeid: 3, reachable: true, role: "replica", replication: "error", source: "10.0.0.1", error: "IO error 1236: the primary has no record of transactions 0-3-17", gtid: "0-1-40,0-3-17" },
        ],
      },
    );
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.getByTestId("node-3").waitFor();
    const healthy = page.getByTestId("node-2-db");
    await healthy.getByText("Replica of n1 · running · lag 0 s").waitFor({ timeout: 2000 });
    assert.equal(await page.getByTestId("node-2").locator(".db-problems").count(), 0, "nothing wrong on the healthy replica");
    assert.equal(await page.getByTestId("node-1-db").innerText(), "Primary");
    const card = page.getByTestId("node-3");
    assert.equal(await page.getByTestId("node-3-db").innerText(), "Replica of n1 · broken");
    const problems = card.locator(".db-problems");
    await problems.getByText("Diverged: being re-cloned from n1; not eligible as master").waitFor();
    await problems.getByText("IO error 1236: the primary has no record of transactions 0-3-17").waitFor();
    const red = await problems.evaluate((el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
    assert.deepEqual(red, ["rgb(138, 28, 18)", "rgb(253, 229, 226)"], "the diverged database is shown in red");
    assert.doesNotMatch(await card.innerText(), /[{}"]/, "words, not JSON");
    await page.getByRole("list", { name: "Nodes" }).screenshot({ path: join(SHOTS, "db-health.png") });
    await shot("overview-db");
    // The node page: every detail, whether it may be master, and what a saved change means.
    await card.getByRole("link").click();
    await page.getByRole("heading", { name: /Node n3/ }).waitFor();
    const section = page.getByTestId("node-db");
    assert.equal(await section.getByTestId("node-db-eligible").innerText(), "no — diverged: being re-cloned from n1");
    await section.getByText("n1 (10.0.0.1)").waitFor();
    await section.getByText("0-1-40,0-3-17").waitFor();
    const help = await page.getByTestId("ack-help").innerText();
    assert.match(help, /saved \(2xx\) only once a majority of the database nodes has it; if not, the panel answers 503/);
    assert.match(help, /rebuilt from the primary automatically; what it discarded is kept in a file on that node and named in an incident/);
    await shot("node-db");
    await page.goto(p.url + "/#/nodes/2");
    await page.getByTestId("node-db").getByText("Lag").waitFor();
    assert.match(await page.getByTestId("node-db").innerText(), /Role\s+Replica\s+Replication\s+running\s+Replicates from\s+n1 \(10\.0\.0\.1\)\s+Lag\s+0 s/);
    assert.equal(await page.getByTestId("node-db-eligible").innerText(), "yes");
    await p.setStatus(fakeView());
    await p.db.update(nodes).set({ replication: false }).where(eq(nodes.nodeid, 3));
    await page.getByRole("link", { name: "Cluster", exact: true }).click();
    await page.getByTestId("node-3").waitFor();
  });

  test("phone width: overview and VMs fit without horizontal page scrolling", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.getByTestId("node-3").waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
    await shot("phone-overview");
    await page.getByRole("link", { name: "VMs" }).click();
    await page.getByTestId("vm-web1").waitFor();
    await shot("phone-vms");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("keyboard: the skip link and navigation work without a mouse", async () => {
    await page.goto(p.url + "/#/");
    await page.reload(); // a fresh load: focus starts at the top of the document
    await page.getByTestId("node-1").waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Cluster");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Virtual machines" }).waitFor();
  });

  test("no console errors", () => {
    assert.deepEqual(consoleErrors, []);
  });
});
