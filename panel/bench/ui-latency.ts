// Decision -> UI latency benchmark (prints numbers, asserts nothing). A 3-node lab with MariaDB and
// agents; Debian's Chromium (playwright-core) shows the panel's overview through the lab's port
// forwarder. Each repetition cuts n3's control link, waits until the overview shows n3's new
// status, heals it and waits until it shows it healthy again ("Member", or "Network unstable"
// once the cuts count as flapping). Per change it measures, on the one
// machine clock shared by the agents and the browser:
//   write -> SSE   the master's status-file write that carries the change (its `writtenAt`, taken in
//                  the agent step that decided it) -> the panel's SSE `status` event arriving in the page
//   write -> DOM   the same write -> n3's card in the overview showing the new status
//   log -> DOM     the master's logged CPG membership decision (pino `time`) -> the card changing;
//                  for a cut this includes the agent working out n3's new status after the
//                  membership change (test IP, storage heartbeat), so it is not only UI latency
// Run: node --import tsx panel/bench/ui-latency.ts [--reps 10] [--port 15073]
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { launchChromium } from "../test/chromium.ts";
import { Lab, waitUntil } from "../../lab/src/index.ts";
import { argText as arg } from "../../lab/bench/args.ts";

const reps = Number(arg("reps", "10"));
const port = Number(arg("port", "15073"));
const ADMIN = { username: "admin", password: "ui latency bench password" };
const WATCHED = 3;
const HEALTHY = ["member", "network_unstable"];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const line = (name: string, xs: number[]) =>
  xs.length === 0 ? `  ${name.padEnd(30)} no samples` : `  ${name.padEnd(30)} median ${pct(xs, 0.5)} ms   p95 ${pct(xs, 0.95)} ms   max ${Math.max(...xs)} ms   min ${Math.min(...xs)} ms   (n=${xs.length})`;

/** What the page records: SSE status events (arrival, writtenAt, n3's status) and n3's card class changes. */
type Recorded = { sse: Array<{ at: number; writtenAt: number | null; status: string | null }>; dom: Array<{ at: number; status: string | null }>; state?: number };

/** Runs in the page: a second EventSource and a MutationObserver, both stamping Date.now(). */
function installRecorder(watched: number) {
  const rec: Recorded = { sse: [], dom: [] };
  (window as unknown as { __rec: Recorded }).__rec = rec;
  const es = new EventSource("/api/events");
  setInterval(() => (rec.state = es.readyState), 500);
  es.addEventListener("status", (e) => {
    const d = JSON.parse((e as MessageEvent<string>).data) as { writtenAt: number | null; nodes: Array<{ nodeid: number; status: string }> };
    rec.sse.push({ at: Date.now(), writtenAt: d.writtenAt, status: d.nodes.find((n) => n.nodeid === watched)?.status ?? null });
  });
  let last: string | null = null;
  const check = () => {
    const cls = document.querySelector(`[data-testid="node-${watched}"]`)?.className ?? "";
    const status = /\bst-(\w+)/.exec(cls)?.[1] ?? null;
    if (status !== last) rec.dom.push({ at: Date.now(), status }), (last = status);
  };
  new MutationObserver(check).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["class"] });
  check();
}

/** The master's logged membership decisions (pino `time`) at or after `since`. */
function membershipDecisions(lab: Lab, master: number, since: number): number[] {
  const log = readFileSync(join(lab.nodeDir(master), "log", "corolistener.log"), "utf8");
  return log
    .split("\n")
    .filter((l) => l.includes('"kind":"membership"'))
    .map((l) => (JSON.parse(l) as { time: number }).time)
    .filter((t) => t >= since);
}

async function main() {
  const lab = await Lab.up({ name: "pe2e", nodes: 3, agents: true, mariadb: true });
  let ctx: BrowserContext | null = null;
  const profile = mkdtempSync(join(tmpdir(), "ha-bench-chromium-"));
  const writeToSse: Record<string, number[]> = { cut: [], heal: [] };
  const writeToDom: Record<string, number[]> = { cut: [], heal: [] };
  const logToDom: Record<string, number[]> = { cut: [], heal: [] };
  let missed = 0;
  try {
    lab.forwardPanel(port);
    const base = `http://127.0.0.1:${port}`;
    await waitUntil("the panel answers", async () => (await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(1500) }).catch(() => null))?.ok === true, 120_000, 250);
    const token = await waitUntil(
      "the setup token in n1's log",
      () => [...readFileSync(join(lab.nodeDir(1), "log", "agent.out"), "utf8").matchAll(/"setupToken":"([^"]+)"/g)].at(-1)?.[1] ?? null,
      30_000,
      250,
    );
    const setup = await fetch(`${base}/api/setup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token, ...ADMIN }) });
    if (!setup.ok) throw new Error(`setup failed: ${setup.status} ${await setup.text()}`);

    ctx = await launchChromium(profile);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    await page.goto(base + "/");
    await page.getByLabel("Username").fill(ADMIN.username);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByTestId(`node-${WATCHED}`).waitFor();
    await page.getByText("Live", { exact: true }).waitFor();
    // tsx (esbuild, keepNames) wraps named functions in __name(...), which the page lacks.
    await page.evaluate("globalThis.__name = (f) => f");
    await page.evaluate(installRecorder, WATCHED);
    const recorded = () => page.evaluate(() => (window as unknown as { __rec: Recorded }).__rec);

    const measure = async (kind: "cut" | "heal", since: number, done: (status: string | null) => boolean) => {
      const dom = await waitUntil(`n${WATCHED}'s card after the ${kind}`, async () => (await recorded()).dom.find((d) => d.at >= since && done(d.status)), 60_000, 50).catch(async (err: Error) => {
        const r = await recorded();
        const file = await lab.exec(1, ["cat", "/run/corolistener/status.json"]);
        const n3 = (JSON.parse(file.stdout || "{}") as { view?: { nodes: Array<{ nodeid: number; status: string; reason: string }> } }).view?.nodes.find((n) => n.nodeid === WATCHED);
        const conn = await page.locator(".conn").innerText().catch(() => "(no .conn)");
        const h = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(2000) }).then((x) => x.text(), (e: Error) => e.message);
        console.log(`MISSED (${err.message}) since ${since}; last DOM ${JSON.stringify(r.dom.slice(-3))}; last SSE ${JSON.stringify(r.sse.slice(-3))}; recorder stream ${r.state}; page ${conn}; health ${h}; master's file: ${JSON.stringify(n3)}`);
        missed++;
        return null;
      });
      if (!dom) return `${kind}: missed`;
      const sse = (await recorded()).sse.find((s) => s.at >= since && done(s.status));
      if (sse?.writtenAt) {
        writeToSse[kind]!.push(sse.at - sse.writtenAt);
        writeToDom[kind]!.push(dom.at - sse.writtenAt);
      }
      const decision = membershipDecisions(lab, 1, since)[0];
      if (decision !== undefined) logToDom[kind]!.push(dom.at - decision);
      return `${kind}: ${dom.status}${sse?.writtenAt ? ` write->DOM ${dom.at - sse.writtenAt} ms` : ""}${decision !== undefined ? ` log->DOM ${dom.at - decision} ms` : ""}`;
    };

    for (let i = 0; i < reps; i++) {
      let t = Date.now();
      await lab.cut(WATCHED);
      // After three short cuts in 10 minutes the agent shows n3 as "network unstable" (shown only, no
      // action) instead of "member": both count as healthy here.
      const a = await measure("cut", t, (s) => s !== null && !HEALTHY.includes(s));
      await new Promise((r) => setTimeout(r, 1500));
      t = Date.now();
      await lab.heal(WATCHED);
      const b = await measure("heal", t, (s) => s !== null && HEALTHY.includes(s));
      console.log(`rep ${i + 1}/${reps}: ${a}; ${b}`);
      await lab.waitQuorate([1, 2, 3], 30_000);
      await new Promise((r) => setTimeout(r, 2000));
    }
  } finally {
    await ctx?.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
    await lab.down();
    // Printed also when a repetition failed: the samples so far still count.
    console.log(`\nDecision -> UI latency, 3-node lab, ${reps} cut/heal repetitions of n${WATCHED} (master n1):`);
    for (const kind of ["cut", "heal"] as const) {
      console.log(`${kind === "cut" ? "n3 cut (status leaves Member)" : "n3 healed (back to Member / Network unstable)"}:`);
      console.log(line("status write -> SSE in page", writeToSse[kind]!));
      console.log(line("status write -> DOM", writeToDom[kind]!));
      console.log(line("membership decision -> DOM", logToDom[kind]!));
    }
    if (missed) console.log(`${missed} changes were not shown within 60 s (see MISSED lines above)`);
  }
}

await main();
