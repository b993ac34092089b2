import { useCallback, useEffect, useRef, useState } from "react";
import { get, post, setUnauthorizedHandler, type Me } from "./api.ts";
import { LiveProvider, useLive } from "./live.tsx";
import { useRoute } from "./hooks.ts";
import { LoginPage } from "./pages/Login.tsx";
import { Overview } from "./pages/Overview.tsx";
import { NodePage } from "./pages/NodePage.tsx";
import { VmsPage } from "./pages/Vms.tsx";
import { IncidentsPage } from "./pages/Incidents.tsx";
import { SettingsPage } from "./pages/Settings.tsx";

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const gone = useCallback(() => setMe(null), []);
  useEffect(() => {
    setUnauthorizedHandler(gone);
    // /api/session answers 200 either way, so a logged-out visit logs no failed request.
    get<Me | { user: null }>("/api/session").then((s) => setMe(s.user ? (s as Me) : null), () => setMe(null));
  }, [gone]);
  if (me === undefined) return <p className="loading">Loading…</p>;
  if (me === null) return <LoginPage onLogin={setMe} />;
  return (
    <LiveProvider onGone={gone}>
      <Shell me={me} onLogout={gone} />
    </LiveProvider>
  );
}

const NAV = [
  ["", "Cluster"],
  ["vms", "VMs"],
  ["incidents", "Incidents"],
  ["settings", "Settings"],
] as const;

function Shell({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const route = useRoute();
  const live = useLive();
  const [page, arg] = route;
  const admin = me.user.role === "admin";
  const firstRender = useRef(true);
  useEffect(() => {
    document.title = `${NAV.find(([p]) => p === (page ?? ""))?.[1] ?? "Node"} · corolistener`;
    // After navigating, keyboard and screen-reader users start at the new content.
    if (!firstRender.current) document.getElementById("main")?.focus({ preventScroll: true });
    firstRender.current = false;
  }, [page, arg]);
  const logout = async () => {
    await post("/api/logout").catch(() => undefined);
    onLogout();
  };
  const e = live.election;
  return (
    <>
      <a className="skip" href="#main" onClick={(ev) => (ev.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header className="top">
        <strong className="brand">corolistener</strong>
        <nav aria-label="Main">
          {NAV.map(([p, label]) => (
            <a key={p} href={`#/${p}`} aria-current={(page ?? "") === p || (p === "" && page === "nodes") ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span className={`conn ${live.connected ? "on" : "off"}`} role="status" title={live.connected ? "Receiving live updates" : "Reconnecting to the panel…"}>
          {live.connected ? "Live" : "Reconnecting…"}
        </span>
        <span className="who">
          {me.user.username} ({me.user.role})
        </span>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      {e && e.state !== "live" && (
        <p className="banner warn" role="alert">
          Cluster state unknown: {e.problem}
        </p>
      )}
      {e && e.state === "live" && e.changesRefused && (
        <p className="banner bad" role="alert">
          {e.changesRefused}
        </p>
      )}
      {e && e.state === "live" && !e.isMaster && (
        <p className="banner warn" role="alert">
          This node is not the master{e.master !== null ? ` (n${e.master} is)` : ""}: use the panel on the cluster IP.
        </p>
      )}
      <main id="main" tabIndex={-1}>
        {page === undefined || page === "" ? <Overview /> : null}
        {page === "nodes" && arg ? <NodePage nodeid={Number(arg)} admin={admin} /> : null}
        {page === "nodes" && !arg ? <Overview /> : null}
        {page === "vms" ? <VmsPage admin={admin} /> : null}
        {page === "incidents" ? <IncidentsPage /> : null}
        {page === "settings" ? <SettingsPage admin={admin} me={me} /> : null}
        {page && !["nodes", "vms", "incidents", "settings"].includes(page) ? <p>No such page. <a href="#/">Back to the cluster</a></p> : null}
      </main>
    </>
  );
}
