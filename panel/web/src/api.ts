// Talking to the panel's API: JSON in and out, the CSRF token on writes, errors as ApiError.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    /** Retry-After in seconds (503: the cluster database is briefly away, e.g. during a failover). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

function csrfToken(): string | undefined {
  return document.cookie
    .split(";")
    .map((c) => c.trim())
    .find((c) => c.startsWith("ha_csrf="))
    ?.slice("ha_csrf=".length);
}

/** Called when the API says the session is gone. */
let onUnauthorized: () => void = () => undefined;
export const setUnauthorizedHandler = (f: () => void) => void (onUnauthorized = f);

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const token = csrfToken();
  if (method !== "GET" && token) headers["x-csrf-token"] = decodeURIComponent(token);
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
    if (res.ok) throw new ApiError(res.status, "the panel answered something that is not JSON");
  }
  if (!res.ok) {
    const e = (json ?? {}) as { error?: string; field?: string };
    if (res.status === 401 && !path.startsWith("/api/login") && !path.startsWith("/api/me")) onUnauthorized();
    const retry = Number(res.headers.get("retry-after"));
    throw new ApiError(res.status, e.error ?? `${res.status} ${res.statusText}`, e.field, Number.isFinite(retry) && retry > 0 ? retry : undefined);
  }
  return json as T;
}

export const get = <T>(path: string) => api<T>("GET", path);
export const patch = <T>(path: string, body: unknown) => api<T>("PATCH", path, body);
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, body);
export const del = <T>(path: string) => api<T>("DELETE", path);

// ---- shapes the API returns

export type NodeStatus = "leader" | "member" | "network_isolation" | "storage_isolation" | "full_failure" | "excluded" | "network_unstable" | "unknown" | "offline";
export type Me = { user: { id: number; username: string; role: "admin" | "viewer" }; csrf: string };
export type NodeRow = {
  nodeid: number;
  name: string;
  address: string | null;
  configured: boolean;
  prio: number;
  replication: boolean | null;
  maintenance: boolean;
  reserve: boolean;
  livePrio: number | null;
  status: NodeStatus;
  isMaster: boolean;
  inQuorum: boolean;
  reason: string;
  /** The database as the master's agent last read it; null: no reading of this node. */
  db: DbHealth | null;
  /** May its database make it master (null: not judged); why not. */
  dbEligible: boolean | null;
  dbReason: string | null;
};
/** One node's database (agent/src/effects/db/health.ts DbNodeHealth, plus the source's node name). */
export type DbHealth = {
  reachable: boolean;
  role: "primary" | "replica" | "off" | "read-only" | "unknown";
  replication: "running" | "connecting" | "stopped" | "error" | "disk-full" | "none";
  /** The address it replicates from, and the node that has it. */
  source?: string;
  sourceName: string | null;
  error?: string;
  lagSeconds?: number | null;
  gtid?: string;
  checkedAt: string | null;
};
/** GET /api/admission: can the cluster lose any one node and still place every HA VM? */
export type AdmissionReport = {
  ok: boolean;
  summary: string;
  live: boolean;
  ramKnown: boolean;
  nodes: Array<{ nodeid: number; ok: boolean; restarted: Array<{ vm: string; node: number }>; staysDown: Array<{ vm: string; reason: string }>; unrecoverable: string[]; skipped?: string }>;
};

export type Vm = {
  name: string;
  nodeid: number | null;
  ramMb: number;
  vcpus: number;
  diskLocation: string;
  storage: "network" | "local";
  ha: boolean;
  restartPriority: number;
  state: string;
  liveOwner?: number | null;
  note?: string | null;
  ip: string | null;
  /** 'pending': created in the panel, the master has not written its record on the shared storage yet. */
  definitionState: "pending" | "defined" | "failed";
  /** Pending: why the write is retried; failed: why; defined: a note (e.g. the requested node could not take it). */
  definitionError: string | null;
  /** Asked for at creation: the VM starts there if that node can take it, else placement chooses (see definitionError). */
  requestedNodeid: number | null;
};
export type Phase = { name: string; at: string; ms?: number; ok: boolean; detail?: string };
export type Incident = { id: number; at: string; actor: string; kind: string; severity: "info" | "warning" | "error"; nodeid: number | null; vm: string | null; summary: string; reason: string; phases: Phase[] | null };
export type Election = {
  state: "live" | "stale" | "missing" | "invalid";
  problem: string | null;
  localNodeId: number | null;
  master: number | null;
  isMaster: boolean;
  why: string | null;
  quorum: { quorate: boolean | null; have: number; need: number; members: number[] } | null;
  term: number | null;
  changesRefused: string | null;
  nodes: Array<{ nodeid: number; prio: number; status: NodeStatus; isMaster: boolean; reason: string }>;
  reasons: string[];
};
export type Settings = {
  clusterIp: string;
  clusterIpPrefix: number;
  clusterIpDevice: string;
  testIp: string | null;
  panelPort: number;
  fenceTimeoutMs: number;
  storageTimeoutMs: number;
  reserveNodes: number[];
  failback: boolean;
};
export type User = { id: number; username: string; role: "admin" | "viewer"; disabled: boolean; lastLogin: string | null };
