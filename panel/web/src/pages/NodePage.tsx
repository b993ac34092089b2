import { useEffect, useState, type FormEvent } from "react";
import { patch, type Incident, type NodeRow, type Vm } from "../api.ts";
import { ErrorBox, fmtTime, StatusBadge, useAction } from "../components.tsx";
import { useData } from "../hooks.ts";
import { describeDb, fmtLag } from "../db-health.ts";
import { ACK_HELP, DbProblems } from "../db-view.tsx";

type Detail = { node: NodeRow; vms: Vm[]; history: Incident[] };

export function NodePage({ nodeid, admin }: { nodeid: number; admin: boolean }) {
  const { data, error, reload } = useData<Detail>(Number.isInteger(nodeid) ? `/api/nodes/${nodeid}` : null);
  const [prio, setPrio] = useState("");
  const save = useAction();
  const n = data?.node;
  useEffect(() => {
    if (n) setPrio(String(n.prio));
  }, [n?.prio]);
  if (error) return <ErrorBox error={error} />;
  if (!n) return <p className="loading">Loading…</p>;
  const change = (body: Record<string, unknown>, ok: string) => save.run(() => patch(`/api/nodes/${nodeid}`, body).then(reload), ok);
  const submitPrio = (ev: FormEvent) => {
    ev.preventDefault();
    void change({ prio: Number(prio) }, "Prio saved; the master applies it");
  };
  return (
    <>
      <p>
        <a href="#/">← Cluster</a>
      </p>
      <h1>
        Node {n.name} <StatusBadge status={n.status} />
      </h1>
      <p className="reason">{n.reason}</p>
      <section className="panel" aria-labelledby="settings-h">
        <h2 id="settings-h">Settings</h2>
        <form onSubmit={submitPrio} className="inline">
          <label>
            Priority
            <input type="number" min={0} max={1000000} value={prio} onChange={(e) => setPrio(e.target.value)} disabled={!admin} name="prio" />
          </label>
          {admin && (
            <button type="submit" disabled={save.busy}>
              Save prio
            </button>
          )}
          {n.livePrio !== null && n.livePrio !== n.prio && <span className="pending">running with {n.livePrio} until the master applies it</span>}
        </form>
        <div className="toggles">
          <label className="switch">
            <input type="checkbox" checked={n.replication === true} disabled={!admin || save.busy || n.replication === null} onChange={(e) => void change({ replication: e.target.checked }, "Replication role saved")} />
            DB replication
          </label>
          <label className="switch">
            <input type="checkbox" checked={n.maintenance} disabled={!admin || save.busy} onChange={(e) => void change({ maintenance: e.target.checked }, "Maintenance saved")} />
            Maintenance (no VMs placed here)
          </label>
          <label className="switch">
            <input type="checkbox" checked={n.reserve} disabled={!admin || save.busy} onChange={(e) => void change({ reserve: e.target.checked }, "Reserve saved")} />
            N+1 reserve
          </label>
        </div>
        {save.feedback}
        <dl className="facts">
          <dt>Node id</dt>
          <dd>{n.nodeid}</dd>
          <dt>Address</dt>
          <dd>{n.address ?? "—"}</dd>
          <dt>In quorum</dt>
          <dd>{n.inQuorum ? "yes" : "no"}</dd>
          <dt>Master</dt>
          <dd>{n.isMaster ? "yes" : "no"}</dd>
        </dl>
      </section>
      <DbSection n={n} />
      <section className="panel" aria-labelledby="vms-h">
        <h2 id="vms-h">VMs on {n.name}</h2>
        {data.vms.length === 0 ? (
          <p>None.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col">HA</th>
                  <th scope="col">RAM</th>
                  <th scope="col">vCPUs</th>
                </tr>
              </thead>
              <tbody>
                {data.vms.map((v) => (
                  <tr key={v.name}>
                    <td>{v.name}</td>
                    <td>{v.state}</td>
                    <td>{v.ha ? "yes" : "no"}</td>
                    <td>{v.ramMb} MB</td>
                    <td>{v.vcpus}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="panel" aria-labelledby="hist-h">
        <h2 id="hist-h">History</h2>
        {data.history.length === 0 ? (
          <p>Nothing recorded.</p>
        ) : (
          <ul className="history">
            {data.history.map((i) => (
              <li key={i.id}>
                <time dateTime={i.at}>{fmtTime(i.at)}</time> <span className={`sev sev-${i.severity}`}>{i.kind}</span> {i.summary} <span className="muted">— {i.actor}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

/** The node's database: role, replication, lag, errors, whether it may be master, and what a saved change means. */
function DbSection({ n }: { n: NodeRow }) {
  const h = n.db;
  const d = describeDb(n);
  const from = h?.source ? (h.sourceName ? `${h.sourceName} (${h.source})` : h.source) : null;
  return (
    <section className="panel" aria-labelledby="db-h" data-testid="node-db">
      <h2 id="db-h">Database</h2>
      {h || n.dbEligible !== null ? (
        <>
          <DbProblems summary={d} id="node-db-problems" />
          <dl className="facts">
            <dt>Role</dt>
            <dd className={h && !h.reachable ? "db-bad" : undefined}>{h && !h.reachable ? "unreachable" : d.role}</dd>
            {h?.reachable && (
              <>
                <dt>Replication</dt>
                <dd className={`db-${d.tone}`}>{d.replication}</dd>
              </>
            )}
            {from && (
              <>
                <dt>Replicates from</dt>
                <dd>{from}</dd>
              </>
            )}
            {h?.replication === "running" && (
              <>
                <dt>Lag</dt>
                <dd>{typeof h.lagSeconds === "number" ? fmtLag(h.lagSeconds) : "unknown"}</dd>
              </>
            )}
            {h?.error && (
              <>
                <dt>Last error</dt>
                <dd className="error">{h.error}</dd>
              </>
            )}
            {h?.gtid !== undefined && (
              <>
                <dt>Transactions (GTID)</dt>
                <dd>{h.gtid || "none"}</dd>
              </>
            )}
            {d.eligible !== null && (
              <>
                <dt>Eligible as master</dt>
                <dd className={n.dbEligible ? undefined : "error"} data-testid="node-db-eligible">
                  {d.eligible}
                </dd>
              </>
            )}
            {h?.checkedAt && (
              <>
                <dt>Checked</dt>
                <dd>{fmtTime(h.checkedAt)}</dd>
              </>
            )}
          </dl>
        </>
      ) : (
        <p>No reading of this node's database: the master's agent reports it when it runs with a database section.</p>
      )}
      <p className="hint small" data-testid="ack-help">
        {ACK_HELP}
      </p>
    </section>
  );
}
