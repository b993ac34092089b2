import { useCallback, useEffect, useState } from "react";
import { ApiError, get } from "./api.ts";
import { useLive } from "./live.tsx";

/** GETs `path`, again whenever live updates say something changed. */
export function useData<T>(path: string | null) {
  const { version } = useLive();
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let alive = true;
    get<T>(path).then(
      (d) => alive && (setData(d), setError(null)),
      (e: unknown) => alive && setError(e instanceof ApiError ? e.message : String(e)),
    );
    return () => void (alive = false);
  }, [path, version, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** The hash route: "#/nodes/2" -> ["nodes", "2"]. */
export function useRoute(): string[] {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash.replace(/^#\/?/, "").split("/").filter(Boolean);
}
