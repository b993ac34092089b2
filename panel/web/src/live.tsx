// Live updates: one EventSource per page load (reopened after a failover). "status" carries the
// agent's view (election, quorum, node statuses); "change" and "incident" tell pages to refetch.
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { get, type Election } from "./api.ts";

type Live = { election: Election | null; version: number; connected: boolean; lastEventAt: number | null };
const LiveContext = createContext<Live>({ election: null, version: 0, connected: false, lastEventAt: null });

export function LiveProvider({ children, onGone }: { children: ReactNode; onGone: () => void }) {
  const [live, setLive] = useState<Live>({ election: null, version: 0, connected: false, lastEventAt: null });
  useEffect(() => {
    let es: EventSource | null = null;
    /** The node whose panel serves the stream (from /api/health); a different one means a failover. */
    let streamNode: string | null = null;
    let stale = false;
    const bump = () => setLive((l) => ({ ...l, version: l.version + 1, lastEventAt: Date.now() }));
    const open = () => {
      es?.close();
      const s = (es = new EventSource("/api/events"));
      s.addEventListener("open", () => setLive((l) => ({ ...l, connected: true, version: l.version + 1 })));
      s.addEventListener("status", (e) => {
        const election = JSON.parse((e as MessageEvent<string>).data) as Election;
        setLive((l) => ({ ...l, election, version: l.version + 1, connected: true, lastEventAt: Date.now() }));
      });
      s.addEventListener("change", bump);
      s.addEventListener("incident", bump);
      s.addEventListener("error", () => {
        setLive((l) => ({ ...l, connected: false }));
        // EventSource retries by itself unless the server refused us (then readyState is CLOSED):
        // logged out if the session is gone, else (e.g. a 503 while the new master's panel starts)
        // the probe reopens the stream.
        if (s.readyState === EventSource.CLOSED && s === es) {
          stale = true;
          get<{ user: unknown }>("/api/session").then((me) => me.user || onGone(), () => undefined);
        }
      });
    };
    // A crashed master sends no FIN or RST: the stream would look open until TCP gives up, and the
    // server's keep-alive comments are invisible to scripts. So probe the panel every second; when
    // it does not answer, drop the stream, and reopen it once the cluster IP answers again (then
    // from the new master).
    const probe = async () => {
      try {
        const r = await fetch("/api/health", { cache: "no-store", signal: AbortSignal.timeout(2000) });
        if (!r.ok) throw new Error(`health ${r.status}`);
        const { node } = (await r.json()) as { node?: string };
        if (stale || (streamNode !== null && node !== streamNode)) open();
        streamNode = node ?? null;
        stale = false;
      } catch {
        if (stale) return;
        stale = true;
        es?.close();
        setLive((l) => ({ ...l, connected: false }));
      }
    };
    open();
    const timer = setInterval(() => void probe(), 1000);
    return () => {
      clearInterval(timer);
      es?.close();
      es = null;
    };
  }, [onGone]);
  return <LiveContext.Provider value={live}>{children}</LiveContext.Provider>;
}

export const useLive = () => useContext(LiveContext);
