import type { AdmissionReport, NodeRow } from "../api.ts";
import { ErrorBox, StatusBadge } from "../components.tsx";
import { DbProblems } from "../db-view.tsx";
import { describeDb } from "../db-health.ts";
import { useData } from "../hooks.ts";
import { useLive } from "../live.tsx";

export function Overview() {
  const { election: e } = useLive();
  const { data, error } = useData<{ nodes: NodeRow[] }>("/api/nodes");
  const q = e?.quorum;
  const admission = useData<AdmissionReport>("/api/admission").data;
  return (
    <>
      <h1>Cluster</h1>
      {admission && !admission.ok && (
        <p className="banner warn" role="alert" data-testid="admission-warning">
          Losing one node would leave HA VMs down: {admission.summary}
        </p>
      )}
      <section className="summary" aria-label="Cluster summary">
        <div className="stat">
          <span className="label">Quorum</span>
          <span className={`value ${q?.quorate ? "good" : "bad"}`} data-testid="quorum">
            {q ? `${q.quorate ? "Quorate" : "No quorum"} · ${q.have}/${q.need} votes` : "unknown"}
          </span>
        </div>
        <div className="stat">
          <span className="label">Master</span>
          <span className="value" data-testid="master">
            {e?.master != null ? `n${e.master}` : "none"}
          </span>
        </div>
        <div className="stat wide">
          <span className="label">Why</span>
          <span className="value small">{e?.why ?? "—"}</span>
        </div>
      </section>
      <ErrorBox error={error} />
      <h2>Nodes</h2>
      <ul className="cards" aria-label="Nodes">
        {data?.nodes.map((n) => {
          const db = n.db || n.dbEligible !== null ? describeDb(n) : null;
          return (
            <li key={n.nodeid} className={`card st-${n.status}${db?.tone === "bad" ? " card-db-bad" : ""}`} data-testid={`node-${n.nodeid}`}>
              <a href={`#/nodes/${n.nodeid}`} className="card-link">
                <span className="card-title">
                  {n.name}
                  {n.isMaster && <span className="crown"> · master</span>}
                </span>
                <StatusBadge status={n.status} />
                <dl>
                  <dt>Prio</dt>
                  <dd>
                    {n.prio}
                    {n.livePrio !== null && n.livePrio !== n.prio ? <span className="pending"> (running {n.livePrio}, pending)</span> : null}
                  </dd>
                  <dt>Replication</dt>
                  <dd>{n.replication === null ? "—" : n.replication ? "on" : "off"}</dd>
                  <dt>Address</dt>
                  <dd>{n.address ?? "—"}</dd>
                  {n.maintenance && (
                    <>
                      <dt>Maintenance</dt>
                      <dd>on</dd>
                    </>
                  )}
                  {db && (
                    <>
                      <dt>Database</dt>
                      <dd className={`db-${db.tone}`} data-testid={`node-${n.nodeid}-db`}>
                        {db.line}
                      </dd>
                    </>
                  )}
                </dl>
                {db && <DbProblems summary={db} />}
                <span className="reason">{n.reason}</span>
              </a>
            </li>
          );
        })}
      </ul>
      {e && e.reasons.length > 0 && (
        <>
          <h2>Latest decisions</h2>
          <ol className="reasons">
            {e.reasons
              .slice(-8)
              .reverse()
              .map((r, i) => (
                <li key={i}>{r}</li>
              ))}
          </ol>
        </>
      )}
    </>
  );
}
