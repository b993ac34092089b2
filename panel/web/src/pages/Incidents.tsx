import { useState } from "react";
import type { Incident, Phase } from "../api.ts";
import { ErrorBox, fmtMs, fmtTime } from "../components.tsx";
import { useData } from "../hooks.ts";

export function IncidentsPage() {
  const [kind, setKind] = useState("");
  const { data, error } = useData<{ incidents: Incident[] }>(`/api/incidents?limit=200${kind ? `&kind=${encodeURIComponent(kind)}` : ""}`);
  const kinds = ["", "failover", "node-change", "vm-change", "settings-change", "user-login", "user-created", "user-change", "login-locked"];
  return (
    <>
      <h1>Incidents and events</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind(e.target.value)}>
            {kinds.map((k) => (
              <option key={k} value={k}>
                {k || "all"}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorBox error={error} />
      <ol className="timeline">
        {data?.incidents.map((i) => (
          <li key={i.id} className={`incident sev-${i.severity}`}>
            <div className="incident-head">
              <time dateTime={i.at}>{fmtTime(i.at)}</time>
              <span className={`sev sev-${i.severity}`}>{i.kind}</span>
              <strong>{i.summary}</strong>
            </div>
            <div className="muted">
              {i.actor} — {i.reason}
            </div>
            {i.phases && i.phases.length > 0 && <Phases phases={i.phases} />}
          </li>
        ))}
      </ol>
      {data && data.incidents.length === 0 && <p>Nothing recorded.</p>}
    </>
  );
}

/**
 * When each phase started (ms since epoch), or null if a time is unreadable. Failover phases carry
 * their start in `at`, database promotion phases their end: whichever reading makes consecutive
 * phases chain up (one starts as the previous ends) is the one used.
 */
function phaseStarts(phases: Phase[]): number[] | null {
  const at = phases.map((p) => Date.parse(p.at));
  if (at.some((t) => !Number.isFinite(t))) return null;
  let startChains = 0;
  let endChains = 0;
  for (let i = 1; i < at.length; i++) {
    const gap = at[i]! - at[i - 1]!;
    if (Math.abs(gap - (phases[i - 1]!.ms ?? NaN)) <= 5) startChains++;
    if (Math.abs(gap - (phases[i]!.ms ?? NaN)) <= 5) endChains++;
  }
  return endChains > startChains ? at.map((t, i) => t - (phases[i]!.ms ?? 0)) : at;
}

/**
 * Failover phases as a timeline: each bar starts where the phase started (relative to the
 * earliest phase) and is as long as it took; the numbers are in the last column too.
 */
function Phases({ phases }: { phases: Phase[] }) {
  const starts = phaseStarts(phases);
  const t0 = starts ? Math.min(...starts) : 0;
  let cursor = 0;
  const rows = phases.map((p, i) => {
    const offset = starts ? starts[i]! - t0 : cursor;
    cursor = offset + (p.ms ?? 0);
    return { ...p, offset };
  });
  const total = Math.max(1, ...rows.map((r) => r.offset + (r.ms ?? 0)));
  return (
    <figure className="phases">
      <figcaption>Phases — total {fmtMs(total)}</figcaption>
      <table>
        <tbody>
          {rows.map((p, idx) => (
            <tr key={idx}>
              <th scope="row">{p.name}</th>
              <td className="bar-cell">
                <svg viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" aria-label={`${p.name}: from ${fmtMs(p.offset)} for ${p.ms === undefined ? "unmeasured time" : fmtMs(p.ms)}`}>
                  <rect x="0" y="5" width="1000" height="2" className="track" />
                  <rect x={(p.offset / total) * 1000} y="0" width={Math.max(3, ((p.ms ?? 0) / total) * 1000)} height="12" rx="2" className={p.ok ? "bar ok" : "bar failed"} />
                </svg>
                {p.detail && <div className="phase-detail">{p.detail}</div>}
              </td>
              <td className="num">
                {p.ms === undefined ? "—" : fmtMs(p.ms)}
                {!p.ok && <span className="error"> failed</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
