// The panel is served only by the master, on the cluster IP. On its own address every node (the
// master too) answers with a refusal that points there: an HTML page for browsers, a JSON 503 for
// API clients. Served by the panel process while it waits as a warm standby (and after it is
// activated), so it costs the failover nothing: activation only adds the cluster IP listener.
import type { IncomingMessage, ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

export type RefusalInfo = {
  node: string;
  /** e.g. https://10.0.0.100:1500/ */
  panelUrl: string;
  clusterIp: string;
  /** Is this node the master right now (its panel is active on the cluster IP)? */
  isMaster: boolean;
  /** The master's name if known (from the agent's status file). */
  master: string | null;
};

export type Refusal = { status: number; contentType: string; body: string };

/** Pure: the URL of the panel on the cluster IP. */
export function panelUrlOf(host: string, port: number, tls: boolean): string {
  return `${tls ? "https" : "http"}://${isIP(host) === 6 ? `[${host}]` : host}:${port}/`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Pure: what to answer a request that reached a node's own address. */
export function refusalFor(req: { path: string; accept: string | undefined }, i: RefusalInfo): Refusal {
  const why = i.isMaster
    ? `${i.node} is the master, but the control panel is served only on the cluster IP ${i.clusterIp}`
    : `${i.node} is not the master${i.master ? ` (${i.master} is)` : ""}; the control panel is served only by the master, on the cluster IP ${i.clusterIp}`;
  const wantsHtml = !req.path.startsWith("/api/") && /text\/html/.test(req.accept ?? "");
  if (!wantsHtml) {
    const body = { error: `${why}: use ${i.panelUrl}`, node: i.node, isMaster: i.isMaster, master: i.master, clusterIp: i.clusterIp, panelUrl: i.panelUrl };
    return { status: 503, contentType: "application/json; charset=utf-8", body: JSON.stringify(req.path === "/api/health" ? { ok: false, ...body } : body) };
  }
  const url = escapeHtml(i.panelUrl);
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Not here: the panel is on ${escapeHtml(i.clusterIp)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}a{font-size:1.3em}</style>
</head><body>
<h1>The control panel is not served here</h1>
<p>${escapeHtml(why)}.</p>
<p>Open the panel at <a href="${url}">${url}</a></p>
<p><small>It follows the master: after a failover the same address reaches the new master.</small></p>
</body></html>
`;
  return { status: 503, contentType: "text/html; charset=utf-8", body };
}

/** The master's name from the agent's status file (best effort: null when unknown or stale). */
export function masterFromStatusFile(file: string, maxAgeMs: number): string | null {
  try {
    const doc = JSON.parse(readFileSync(file, "utf8")) as { writtenAt?: number; view?: { master?: number | null } };
    if (typeof doc.writtenAt !== "number" || Date.now() - doc.writtenAt > maxAgeMs) return null;
    return typeof doc.view?.master === "number" ? `n${doc.view.master}` : null;
  } catch {
    return null;
  }
}

/** A plain request handler (no Express): the refusal server must stay tiny and always answer. */
export function refusalHandler(info: () => RefusalInfo) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const r = refusalFor({ path, accept: req.headers.accept }, info());
    res.writeHead(r.status, {
      "Content-Type": r.contentType,
      "Cache-Control": "no-store",
      "Retry-After": "5",
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    });
    res.end(req.method === "HEAD" ? undefined : r.body);
  };
}
