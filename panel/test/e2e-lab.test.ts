// End to end against a real lab cluster (issue 6): Debian's Chromium (playwright-core, no
// downloaded browser) drives the panel that the agents run on the cluster IP of a 3-node lab with
// corosync, MariaDB and process VMs. The root namespace has no route to the lab, so the panel is
// reached through the lab's port forwarder (socat on 127.0.0.1 -> switch namespace -> cluster IP),
// which keeps following the cluster IP when it moves.
//
// Steps: first start (setup token from the master's log) -> raise n3's prio in the UI and see
// corosync.conf change on every node -> toggle a VM's HA flag -> crash the master and watch the UI
// reconnect and show the failover incident with its phases. Screenshots: artifacts/screenshots/lab-*.png.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { CHROMIUM, launchChromium } from "./chromium.ts";
import { parseCorosyncConf, readClusterConfig } from "@ha/shared";
import { Lab, connectNode, waitUntil } from "../../lab/src/index.ts";

const here = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(here, "../web");
const ROOT = resolve(here, "../..");
const SHOTS = join(ROOT, "artifacts/screenshots");
const ADMIN = { username: "admin", password: "lab e2e admin password 42" };
const LAB = "pe2e";
const FORWARD_PORT = 15_072;
const VMS = ["web1", "web2", "web3"];

const skip = process.getuid?.() !== 0 ? "needs root (network namespaces)" : existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM}`;
const until = <T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 60_000) => waitUntil(what, fn, timeoutMs, 250);

/** Type-checks and builds the UI into panel/web/dist, which the agents' panels serve. */
async function buildUi() {
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(WEB, "tsconfig.json")], { stdio: "inherit" });
  const { build } = await import("vite");
  await build({ configFile: join(WEB, "vite.config.ts"), logLevel: "warn" });
}

describe("panel end to end on a real 3-node lab", { skip: skip ?? false, timeout: 420_000 }, () => {
  let lab: Lab;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  let base = "";
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `lab-${name}.png`), fullPage: true });

  /** The agent's own view on node `id` (its status file in the node's private /run). */
  const viewOn = async (id: number) => {
    const r = await lab.exec(id, ["cat", "/run/corolistener/status.json"]);
    if (r.code !== 0) return null;
    try {
      return (JSON.parse(r.stdout) as { view: { master: number | null; vms: Array<{ vm: string; owner: number | null }> } }).view;
    } catch {
      return null; // replaced while we read it
    }
  };
  const confOn = (id: number) => readClusterConfig(parseCorosyncConf(readFileSync(join(lab.nodeDir(id), "etc-corosync", "corosync.conf"), "utf8")));
  const setupToken = (master: number) => {
    const log = join(lab.nodeDir(master), "log", "agent.out");
    if (!existsSync(log)) return null;
    const m = [...readFileSync(log, "utf8").matchAll(/"setupToken":"([^"]+)"/g)].at(-1);
    return m?.[1] ?? null;
  };
  const health = async () => {
    try {
      const r = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(1500) });
      return r.ok ? ((await r.json()) as { node: string }) : null;
    } catch {
      return null;
    }
  };

  before(async () => {
    await buildUi();
    mkdirSync(SHOTS, { recursive: true });
    // Short fencing waits so the crashed master's VMs come back within the test's time.
    lab = await Lab.up({ name: LAB, nodes: 3, agents: true, mariadb: true, ha: { storageTimeoutMs: 2000, fenceTimeoutMs: 3000 } });
    let ip = 170;
    for (const vm of VMS) {
      const r = await lab.exec(1, ["./corolistener", "vm", "define", vm, "--ram", "256", "--disk", `network:/run/ha-storage/vms/${vm}.disk`, "--ip", `172.31.224.${ip++}`, "--ha", "-c", "/etc/corosync/corolistener.json"]);
      assert.equal(r.code, 0, `vm define ${vm}: ${r.stderr || r.stdout}`);
    }
    lab.forwardPanel(FORWARD_PORT);
    base = `http://127.0.0.1:${FORWARD_PORT}`;
    profile = mkdtempSync(join(tmpdir(), "ha-lab-chromium-"));
    ctx = await launchChromium(profile);
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
  });

  after(async () => {
    await ctx?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await lab?.down(); // also ends the forwarder
  });

  test("first start: the setup token from the master's log creates the admin", async () => {
    await until("n1 is master with VMs placed", async () => {
      const v = await viewOn(1);
      return v?.master === 1 && VMS.every((vm) => v.vms.some((x) => x.vm === vm && x.owner !== null));
    });
    await until("the panel answers on the cluster IP", health, 90_000);
    const token = await until("the setup token in n1's log (after the DB promotion and schema)", () => setupToken(1), 90_000);
    await page.goto(base + "/");
    await page.getByRole("heading", { name: "Create the admin account" }).waitFor();
    await shot("setup");
    await page.getByLabel("Setup token").fill(token);
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Create admin" }).click();
    await page.getByRole("heading", { name: "Cluster" }).waitFor();
    await page.getByTestId("node-3").waitFor();
    await page.getByText("Live", { exact: true }).waitFor();
    assert.equal(await page.getByTestId("master").innerText(), "n1");
    await shot("overview");
  });

  test("raise n3's prio in the UI: corosync.conf changes on every node", async () => {
    const before = [1, 2, 3].map((id) => confOn(id).configVersion);
    await page.getByTestId("node-3").getByRole("link").first().click();
    await page.getByRole("heading", { name: /Node n3/ }).waitFor();
    await page.getByLabel("Priority").fill("25");
    await page.getByRole("button", { name: "Save prio" }).click();
    await page.getByText("Prio saved").waitFor();
    await until("prio 25 for n3 and a new config_version in corosync.conf on every node", () =>
      [1, 2, 3].every((id) => {
        const c = confOn(id);
        return c.nodes.find((n) => n.nodeid === 3)?.prio === 25 && c.configVersion > before[id - 1]!;
      }),
    );
    const versions = new Set([1, 2, 3].map((id) => String(confOn(id).configVersion)));
    assert.equal(versions.size, 1, `every node has the same config_version (${[...versions]})`);
    await shot("node");
  });

  test("toggle a VM's HA flag in the UI: the DB has it (and the shared storage, once the agent copies it)", async (t) => {
    // The VM table is filled from the shared storage by the master; until that exists, seed the rows.
    const c = await connectNode(lab, 1, { database: "ha" });
    try {
      const [rows] = await c.query("SELECT name FROM vms");
      if ((rows as unknown[]).length === 0) {
        t.diagnostic("no VM rows in the DB yet: the test inserted them (no agent copies VMs into the DB yet)");
        for (const vm of VMS) {
          await c.query("INSERT INTO vms (name, ram_mb, vcpus, disk_location, storage, ha) VALUES (?, 256, 1, ?, 'network', 1)", [vm, `/run/ha-storage/vms/${vm}.disk`]);
        }
      }
    } finally {
      await c.end();
    }
    await page.getByRole("link", { name: "VMs" }).click();
    await page.getByTestId("vm-web2").waitFor();
    const ha = page.getByLabel("HA for web2");
    assert.equal(await ha.isChecked(), true);
    await ha.click();
    await page.getByText("HA off for web2").waitFor();
    const dbHa = async () => {
      const conn = await connectNode(lab, 1, { database: "ha" });
      try {
        const [rows] = await conn.query("SELECT ha FROM vms WHERE name = 'web2'");
        return (rows as Array<{ ha: number }>)[0]?.ha;
      } finally {
        await conn.end();
      }
    };
    assert.equal(await dbHa(), 0);
    await shot("vms");
    // The agent copies the flag to the VM's definition on the shared storage (if that sync exists yet).
    const metaHa = () => (JSON.parse(readFileSync(join(lab.storageDir(), "cluster", "vms", "web2.json"), "utf8")) as { definition: { ha?: boolean } }).definition.ha;
    const copied = await until("web2's HA flag off on the shared storage", () => metaHa() === false, 10_000).then(() => true, () => false);
    t.diagnostic(copied ? "the HA flag reached the shared storage" : "the HA flag did not reach the shared storage within 10 s (no DB -> storage VM sync yet)");
    // Back on, so the failover below restarts every VM of the crashed master.
    await page.getByLabel("HA for web2").click();
    await page.getByText("HA on for web2").waitFor();
    assert.equal(await dbHa(), 1);
    if (copied) await until("web2's HA flag on again on the shared storage", () => metaHa() === true, 10_000);
  });

  test("crash the master: the UI reconnects on the cluster IP and shows the failover with its phases", async (t) => {
    await page.getByRole("link", { name: "Cluster" }).click();
    await page.getByText("Live", { exact: true }).waitFor();
    const lost = (await viewOn(1))!.vms.filter((v) => v.owner === 1).map((v) => v.vm);
    // The "Reconnecting…" state may last only a moment: let the page note when it shows.
    await page.evaluate(() => {
      const w = window as unknown as { __reconnectingAt?: number };
      new MutationObserver(() => {
        if (w.__reconnectingAt === undefined && document.querySelector(".conn")?.textContent === "Reconnecting…") w.__reconnectingAt = Date.now();
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const crashAt = Date.now();
    await lab.crash(1);
    const sawAt = await until("the UI noticed the lost connection", () => page.evaluate(() => (window as unknown as { __reconnectingAt?: number }).__reconnectingAt), 15_000);
    t.diagnostic(`"Reconnecting…" shown ${sawAt - crashAt} ms after the crash`);
    await shot("after-crash");
    // n3 has the best prio among the survivors now (25 > 20).
    await until("the panel answers from n3", async () => (await health())?.node === "n3", 60_000);
    // Sessions live in the DB when the panel server keeps them there; otherwise the new master's
    // panel does not know ours and the UI asks to log in again.
    const loggedOut = page.getByRole("heading", { name: "Log in" });
    const live = page.getByText("Live", { exact: true });
    await loggedOut.or(live).first().waitFor({ timeout: 30_000 });
    if (await loggedOut.isVisible()) {
      t.diagnostic("the session did not survive the failover: logged in again");
      await page.getByLabel("Username").fill(ADMIN.username);
      await page.getByLabel("Password").fill(ADMIN.password);
      await page.getByRole("button", { name: "Log in" }).click();
      await live.waitFor();
    } else {
      t.diagnostic("the session survived the failover (no new login)");
    }
    await until("the UI shows n3 as master", async () => (await page.getByTestId("master").innerText().catch(() => "")) === "n3", 30_000);
    await page.getByTestId("node-1").getByText("Failure").waitFor({ timeout: 30_000 });
    await shot("overview-after-failover");

    await page.getByRole("link", { name: "Incidents" }).click();
    const incident = page.locator("li.incident").filter({ hasText: "n1 failed; n3 took over" }).first();
    await incident.waitFor({ timeout: 30_000 });
    for (const phase of ["detection", "election", "IP move", "DB promotion"]) await incident.getByRole("rowheader", { name: phase }).waitFor();
    // The row is updated once the crashed master's VMs run elsewhere; a status change refetches it.
    await incident.getByRole("rowheader", { name: "VM restarts" }).waitFor({ timeout: 60_000 });
    const text = await incident.innerText();
    assert.match(text, /Phases — total/);
    if (lost.length) assert.match(text, new RegExp(`${lost.length}/${lost.length} VMs restarted`), text);
    await shot("incidents");

    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByRole("heading", { name: "Settings" }).waitFor();
    await shot("settings");
  });
});
