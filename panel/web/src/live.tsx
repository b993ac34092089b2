// Live updates: one EventSource per page load. "status" carries the agent's view (election,
// quorum, node statuses); "change" and "incident" tell pages to refetch what they show.
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import type { Election } from "./api.ts";

type Live = { election: Election | null; version: number; connected: boolean; lastEventAt: number | null };
const LiveContext = createContext<Live>({ election: null, version: 0, connected: false, lastEventAt: null });

export function LiveProvider({ children, onGone }: { children: ReactNode; onGone: () => void }) {
  const [live, setLive] = useState<Live>({ election: null, version: 0, connected: false, lastEventAt: null });
  useEffect(() => {
    const es = new EventSource("/api/events");
    const bump = () => setLive((l) => ({ ...l, version: l.version + 1, lastEventAt: Date.now() }));
    es.addEventListener("open", () => setLive((l) => ({ ...l, connected: true })));
    es.addEventListener("status", (e) => {
      const election = JSON.parse((e as MessageEvent<string>).data) as Election;
      setLive((l) => ({ ...l, election, version: l.version + 1, connected: true, lastEventAt: Date.now() }));
    });
    es.addEventListener("change", bump);
    es.addEventListener("incident", bump);
    es.addEventListener("error", () => {
      setLive((l) => ({ ...l, connected: false }));
      // EventSource retries by itself unless the server refused us (then readyState is CLOSED).
      if (es.readyState === EventSource.CLOSED) onGone();
    });
    return () => es.close();
  }, [onGone]);
  return <LiveContext.Provider value={live}>{children}</LiveContext.Provider>;
}

export const useLive = () => useContext(LiveContext);
