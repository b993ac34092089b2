// TLS (PANEL_TLS=auto: a self-signed certificate made once with openssl, reused) and the refusal page
// a node serves on its own address, against the real panel process (server/main.ts) started as the
// agent starts it: a warm standby (PANEL_STANDBY=1, IPC) that is then activated.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import https from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dbAvailable, startPanel, type Panel } from "./helpers.ts";
import { ensureSelfSigned, sansCovered, wantedSans } from "../server/tls.ts";
import { panelUrlOf, refusalFor, type RefusalInfo } from "../server/refusal.ts";

const MAIN = fileURLToPath(new URL("../server/main.ts", import.meta.url));
const PANEL_IP = "127.0.0.1"; // stands for the cluster IP
const NODE_ADDR = "127.0.0.2"; // stands for the node's own address

test("pure: certificate names, SAN coverage, panel URL", () => {
  assert.deepEqual(wantedSans("10.0.0.100", ["n1", "panel.example", "10.0.0.100", " "]), ["IP:10.0.0.100", "DNS:n1", "DNS:panel.example"]);
  assert.deepEqual(wantedSans("0.0.0.0", ["n1"]), ["DNS:n1"]);
  assert.equal(sansCovered("IP Address:10.0.0.100, DNS:n1", ["IP:10.0.0.100", "DNS:n1"]), true);
  assert.equal(sansCovered("IP Address:10.0.0.100, DNS:n1", ["IP:10.0.0.101"]), false);
  assert.equal(sansCovered(undefined, ["DNS:n1"]), false);
  assert.equal(panelUrlOf("10.0.0.100", 1500, true), "https://10.0.0.100:1500/");
  assert.equal(panelUrlOf("fd00::1", 1500, false), "http://[fd00::1]:1500/");
});

test("pure: the refusal is HTML for browsers and a JSON 503 with the cluster IP for API clients", () => {
  const info: RefusalInfo = { node: "n2", panelUrl: "https://10.0.0.100:1500/", clusterIp: "10.0.0.100", isMaster: false, master: "n1" };
  const html = refusalFor({ path: "/", accept: "text/html,application/xhtml+xml,*/*;q=0.8" }, info);
  assert.equal(html.status, 503);
  assert.match(html.contentType, /text\/html/);
  assert.match(html.body, /n2 is not the master \(n1 is\)/);
  assert.match(html.body, /<a href="https:\/\/10\.0\.0\.100:1500\/">/);
  const api = refusalFor({ path: "/api/nodes", accept: "text/html" }, info);
  assert.equal(api.status, 503);
  const body = JSON.parse(api.body);
  assert.equal(body.clusterIp, "10.0.0.100");
  assert.equal(body.panelUrl, "https://10.0.0.100:1500/");
  assert.match(body.error, /not the master/);
  assert.equal(JSON.parse(refusalFor({ path: "/api/health", accept: undefined }, info).body).ok, false);
  const onMaster = refusalFor({ path: "/", accept: "text/html" }, { ...info, isMaster: true, master: "n2" });
  assert.match(onMaster.body, /is the master, but the control panel is served only on the cluster IP 10\.0\.0\.100/);
  assert.doesNotMatch(refusalFor({ path: "/", accept: "text/html" }, { ...info, node: "<b>" }).body, /<b>/, "escaped");
});

test("self-signed certificate: made once with mode 600, reused, remade when the cluster IP changes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ha-panel-tls-"));
  try {
    const sans = wantedSans("10.0.0.100", ["n1"]);
    const first = await ensureSelfSigned(join(dir, "tls"), sans, "10.0.0.100");
    assert.equal(first.generated, true);
    assert.equal(statSync(first.keyPath).mode & 0o777, 0o600, "key readable by root only");
    assert.equal(statSync(join(dir, "tls")).mode & 0o777, 0o700);
    const cert = new X509Certificate(readFileSync(first.certPath));
    assert.match(cert.subjectAltName!, /IP Address:10\.0\.0\.100/);
    assert.match(cert.subjectAltName!, /DNS:n1/);
    const again = await ensureSelfSigned(join(dir, "tls"), sans, "10.0.0.100");
    assert.equal(again.generated, false, "reused");
    assert.equal(new X509Certificate(readFileSync(again.certPath)).fingerprint256, cert.fingerprint256);
    const moved = await ensureSelfSigned(join(dir, "tls"), wantedSans("10.0.0.200", ["n1"]), "10.0.0.200");
    assert.equal(moved.generated, true, "the old one does not cover the new cluster IP");
    assert.match(new X509Certificate(readFileSync(moved.certPath)).subjectAltName!, /10\.0\.0\.200/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, PANEL_IP, () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

function request(url: string, ca: Buffer, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: o.method ?? "GET", ca, headers: o.headers, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
    req.end(o.body);
  });
}

async function until<T>(what: string, f: () => Promise<T>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const skip = await dbAvailable();

describe("the panel process over HTTPS, and the refusal on the node's own address", { skip: skip ?? false }, () => {
  let p: Panel;
  let dir: string;
  const children: ChildProcess[] = [];
  before(async () => {
    p = await startPanel();
    await p.addUser("tlsadmin", "tls admin password 1", "admin");
    dir = mkdtempSync(join(tmpdir(), "ha-panel-tls-proc-"));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function spawnPanel(port: number, env: Record<string, string>): ChildProcess {
    const child = fork(MAIN, [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        PANEL_STANDBY: "1",
        PANEL_HOST: PANEL_IP,
        PANEL_NODE_ADDR: NODE_ADDR,
        PANEL_PORT: String(port),
        PANEL_NODE: "n2",
        PANEL_STATUS_FILE: p.statusFile,
        PANEL_RELOCATED_MARKER: join(dir, "relocated"),
        PANEL_DB_HOST: "127.0.0.1",
        PANEL_DB_USER: "root",
        PANEL_DB_NAME: p.database,
        PANEL_LOG_LEVEL: "warn",
        ...env,
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(child);
    return child;
  }
  const standbyReady = (c: ChildProcess) => new Promise<void>((r) => c.on("message", (m: { type?: string }) => m?.type === "standby" && r()));

  test("PANEL_TLS=auto: standby refuses on its own address (HTML/JSON, pointing to the cluster IP); activated, it serves HTTPS with Secure cookies", async () => {
    const port = await freePort();
    const tlsDir = join(dir, "panel-tls");
    const child = spawnPanel(port, { PANEL_TLS: "auto", PANEL_TLS_DIR: tlsDir });
    await standbyReady(child);
    const ca = readFileSync(join(tlsDir, "cert.pem"));
    assert.equal(statSync(join(tlsDir, "key.pem")).mode & 0o777, 0o600);
    assert.match(new X509Certificate(ca).subjectAltName!, /IP Address:127\.0\.0\.1/, "covers the cluster IP");

    // Standby: the node's own address refuses; the cluster IP is not served by this process yet.
    const own = `https://${NODE_ADDR}:${port}`;
    const html = await until("refusal page", () => requestNoName(`${own}/`, ca, { accept: "text/html" }));
    assert.equal(html.status, 503);
    assert.match(String(html.headers["content-type"]), /text\/html/);
    assert.match(html.body, /n2 is not the master \(n1 is\)/);
    assert.match(html.body, new RegExp(`https://127\\.0\\.0\\.1:${port}/`));
    const api = await requestNoName(`${own}/api/vms`, ca, { accept: "application/json" });
    assert.equal(api.status, 503);
    assert.equal(JSON.parse(api.body).clusterIp, PANEL_IP);
    await assert.rejects(request(`https://${PANEL_IP}:${port}/api/health`, ca), /ECONNREFUSED/, "a standby does not serve the panel");

    child.send({ type: "activate" });
    const health = await until("panel on the cluster IP", () => request(`https://${PANEL_IP}:${port}/api/health`, ca));
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).ok, true);
    assert.equal(health.headers["strict-transport-security"], undefined, "no HSTS with a self-signed certificate");
    const login = await request(`https://${PANEL_IP}:${port}/api/login`, ca, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "tlsadmin", password: "tls admin password 1" }),
    });
    assert.equal(login.status, 200, login.body);
    const cookies = login.headers["set-cookie"] as string[];
    const sid = cookies.find((c) => c.startsWith("ha_sid="))!;
    const csrf = cookies.find((c) => c.startsWith("ha_csrf="))!;
    assert.match(sid, /; Secure/);
    assert.match(sid, /; HttpOnly/);
    assert.match(sid, /; SameSite=Strict/);
    assert.match(csrf, /; Secure/);
    assert.doesNotMatch(csrf, /HttpOnly/, "the page reads the CSRF cookie");
    const afterActivation = await requestNoName(`${own}/`, ca, { accept: "text/html" });
    assert.match(afterActivation.body, /n2 is the master, but the control panel is served only on the cluster IP 127\.0\.0\.1/);

    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;

    // A restart reuses the certificate.
    const port2 = await freePort();
    const second = spawnPanel(port2, { PANEL_TLS: "auto", PANEL_TLS_DIR: tlsDir });
    await standbyReady(second);
    assert.equal(new X509Certificate(readFileSync(join(tlsDir, "cert.pem"))).fingerprint256, new X509Certificate(ca).fingerprint256);
    second.kill("SIGTERM");
  });

  test("a provided certificate (PANEL_TLS_CERT/KEY) also gets HSTS", async () => {
    const made = await ensureSelfSigned(join(dir, "provided"), wantedSans(PANEL_IP, []), PANEL_IP);
    const port = await freePort();
    const child = spawnPanel(port, { PANEL_STANDBY: "", PANEL_TLS_CERT: made.certPath, PANEL_TLS_KEY: made.keyPath });
    const ca = readFileSync(made.certPath);
    const health = await until("panel", () => request(`https://${PANEL_IP}:${port}/api/health`, ca));
    assert.equal(health.status, 200);
    assert.equal(health.headers["strict-transport-security"], "max-age=31536000");
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  });
});

/** HTTPS to the node's own address: the chain is checked, the name is not (the certificate names the cluster IP). */
function requestNoName(url: string, ca: Buffer, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, headers, timeout: 10_000, checkServerIdentity: () => undefined }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}
