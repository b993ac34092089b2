// "File replication" table: per node, the master's last copy of the file set (GET /api/file-sync).
import { ErrorBox, fmtTime } from "./components.tsx";
import { useData } from "./hooks.ts";

export type FileSyncRow = {
  nodeid: number;
  fileSet: string;
  lastRunAt: string;
  lastOkAt: string | null;
  ok: boolean;
  error: string | null;
  filesChanged: number;
  durationMs: number;
};

export function FileSyncSection() {
  const { data, error } = useData<{ nodes: FileSyncRow[] }>("/api/file-sync");
  return (
    <section className="panel" aria-labelledby="file-sync-h">
      <h2 id="file-sync-h">File replication</h2>
      <ErrorBox error={error} />
      {data && data.nodes.length === 0 && <p className="muted">No copy has run yet: the master copies its file sets to every node every 5 minutes.</p>}
      {data && data.nodes.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Node</th>
                <th scope="col">File set</th>
                <th scope="col">Last run</th>
                <th scope="col">Result</th>
                <th scope="col">Last success</th>
                <th scope="col">Files changed</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {data.nodes.map((n) => (
                <tr key={n.nodeid}>
                  <th scope="row">n{n.nodeid}</th>
                  <td>{n.fileSet}</td>
                  <td>{fmtTime(n.lastRunAt)}</td>
                  <td className={n.ok ? undefined : "error"}>{n.ok ? "ok" : `failed: ${n.error ?? "unknown error"}`}</td>
                  <td>{fmtTime(n.lastOkAt)}</td>
                  <td>{n.filesChanged}</td>
                  <td>{n.durationMs} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
