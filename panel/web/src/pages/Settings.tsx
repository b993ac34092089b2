import { useEffect, useState, type FormEvent } from "react";
import { patch, post, type Me, type Settings, type User } from "../api.ts";
import { ErrorBox, fmtTime, useAction } from "../components.tsx";
import { useData } from "../hooks.ts";
import { FileSyncSection } from "../file-sync.tsx";

type Form = Record<keyof Settings, string | boolean>;

const toForm = (s: Settings): Form => ({
  clusterIp: s.clusterIp,
  clusterIpPrefix: String(s.clusterIpPrefix),
  clusterIpDevice: s.clusterIpDevice,
  testIp: s.testIp ?? "",
  panelPort: String(s.panelPort),
  fenceTimeoutMs: String(s.fenceTimeoutMs),
  storageTimeoutMs: String(s.storageTimeoutMs),
  reserveNodes: s.reserveNodes.join(", "),
  failback: s.failback,
});

const fromForm = (f: Form) => ({
  clusterIp: String(f.clusterIp).trim(),
  clusterIpPrefix: Number(f.clusterIpPrefix),
  clusterIpDevice: String(f.clusterIpDevice).trim(),
  testIp: String(f.testIp).trim() || null,
  panelPort: Number(f.panelPort),
  fenceTimeoutMs: Number(f.fenceTimeoutMs),
  storageTimeoutMs: Number(f.storageTimeoutMs),
  reserveNodes: String(f.reserveNodes)
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number),
  failback: f.failback === true,
});

const FIELDS: Array<[keyof Settings, string, string?]> = [
  ["clusterIp", "Cluster IP"],
  ["clusterIpPrefix", "Prefix length (mask)", "number"],
  ["clusterIpDevice", "Device"],
  ["testIp", "Test IP"],
  ["panelPort", "Panel port", "number"],
  ["fenceTimeoutMs", "Fence timeout (ms)", "number"],
  ["storageTimeoutMs", "Storage timeout (ms)", "number"],
  ["reserveNodes", "Reserve node ids (comma separated)"],
];

export function SettingsPage({ admin, me }: { admin: boolean; me: Me }) {
  const { data, error, reload } = useData<{ settings: Settings | null }>("/api/settings");
  const [form, setForm] = useState<Form | null>(null);
  const save = useAction();
  useEffect(() => {
    if (data?.settings) setForm(toForm(data.settings));
  }, [data]);
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    if (form) void save.run(() => patch("/api/settings", fromForm(form)).then(reload), "Settings saved; the master applies them");
  };
  return (
    <>
      <h1>Settings</h1>
      <ErrorBox error={error} />
      <section className="panel" aria-labelledby="cluster-h">
        <h2 id="cluster-h">Cluster</h2>
        {data && !data.settings && <p>No cluster settings yet: the agent writes them when the cluster is set up.</p>}
        {form && (
          <form onSubmit={submit} className="grid-form">
            {FIELDS.map(([k, label, type]) => (
              <label key={k}>
                {label}
                <input name={k} type={type ?? "text"} value={String(form[k])} disabled={!admin} onChange={(e) => setForm({ ...form, [k]: e.target.value })} />
              </label>
            ))}
            <label className="switch">
              <input type="checkbox" name="failback" checked={form.failback === true} disabled={!admin} onChange={(e) => setForm({ ...form, failback: e.target.checked })} />
              Failback (move the master back to a better node when it returns)
            </label>
            {admin && (
              <div>
                <button type="submit" disabled={save.busy}>
                  Save settings
                </button>{" "}
                {save.feedback}
              </div>
            )}
          </form>
        )}
      </section>
      <FileSyncSection />
      {admin ? <Users me={me} /> : <p className="muted">Only admins can change settings and manage users.</p>}
    </>
  );
}

function Users({ me }: { me: Me }) {
  const { data, error, reload } = useData<{ users: User[] }>("/api/users");
  const act = useAction();
  const add = (ev: FormEvent<HTMLFormElement>) => {
    ev.preventDefault();
    const formEl = ev.currentTarget;
    const f = new FormData(formEl);
    void act
      .run(() => post("/api/users", { username: f.get("username"), password: f.get("password"), role: f.get("role") }).then(reload), "User created")
      .then((ok) => ok && formEl.reset());
  };
  return (
    <section className="panel" aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <ErrorBox error={error} />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">Last login</th>
              <th scope="col">Enabled</th>
            </tr>
          </thead>
          <tbody>
            {data?.users.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.username}</th>
                <td>
                  <select
                    value={u.role}
                    disabled={u.id === me.user.id || act.busy}
                    aria-label={`Role of ${u.username}`}
                    onChange={(e) => void act.run(() => patch(`/api/users/${u.id}`, { role: e.target.value }).then(reload), "Role changed")}
                  >
                    <option value="admin">admin</option>
                    <option value="viewer">viewer</option>
                  </select>
                </td>
                <td>{fmtTime(u.lastLogin)}</td>
                <td>
                  <input
                    type="checkbox"
                    checked={!u.disabled}
                    disabled={u.id === me.user.id || act.busy}
                    aria-label={`${u.username} enabled`}
                    onChange={(e) => void act.run(() => patch(`/api/users/${u.id}`, { disabled: !e.target.checked }).then(reload))}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form onSubmit={add} className="inline">
        <label>
          New user
          <input name="username" required autoComplete="off" />
        </label>
        <label>
          Password (12+ characters)
          <input name="password" type="password" required minLength={12} autoComplete="new-password" />
        </label>
        <label>
          Role
          <select name="role" defaultValue="viewer">
            <option value="viewer">viewer</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" disabled={act.busy}>
          Add user
        </button>
      </form>
      {act.feedback}
    </section>
  );
}
