// The "New VM" form on the VMs page (admins only). The API validates (with the agent's own record
// schema); its message is shown next to the field it names. The VM is created 'pending': the
// master's agent writes its record on the shared storage, then places and starts it.
import { useState, type FormEvent, type ReactNode } from "react";
import { ApiError, post, type NodeRow, type Vm } from "./api.ts";

type Form = { name: string; ramMb: string; vcpus: string; diskKind: "network" | "local"; diskPath: string; ip: string; ha: boolean; restartPriority: string; node: string };
const EMPTY: Form = { name: "", ramMb: "512", vcpus: "1", diskKind: "network", diskPath: "", ip: "", ha: true, restartPriority: "0", node: "" };

/** "" stays undefined so the API says the field is missing instead of "too small". */
const num = (s: string) => (s.trim() === "" ? undefined : Number(s));

const body = (f: Form) => ({
  name: f.name.trim(),
  ramMb: num(f.ramMb),
  vcpus: num(f.vcpus),
  disk: { kind: f.diskKind, path: f.diskPath.trim() },
  ip: f.ip.trim() || undefined,
  ha: f.ha,
  restartPriority: num(f.restartPriority),
  node: f.node ? Number(f.node) : undefined,
});

export function NewVmForm({ nodes, onCreated }: { nodes: NodeRow[]; onCreated: (name: string) => void }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState<Form>(EMPTY);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ msg: string; field?: string } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const r = await post<{ vm: Vm }>("/api/vms", body(form));
      setDone(`${r.vm.name} created: the master defines it on the shared storage and starts it`);
      setForm(EMPTY);
      onCreated(r.vm.name);
    } catch (e) {
      setError(e instanceof ApiError ? { msg: e.message, field: e.field } : { msg: String(e) });
    } finally {
      setBusy(false);
    }
  };

  /** A labelled control with the API's message for it right below, tied by aria-describedby. */
  const field = (id: string, apiField: string, label: string, control: (a: { id: string; "aria-invalid": boolean; "aria-describedby"?: string }) => ReactNode, hint?: string) => {
    const bad = error?.field === apiField;
    const described = [bad ? `${id}-err` : null, hint ? `${id}-hint` : null].filter(Boolean).join(" ") || undefined;
    return (
      <div className="field">
        <label htmlFor={id}>{label}</label>
        {control({ id, "aria-invalid": bad, "aria-describedby": described })}
        {hint && (
          <span id={`${id}-hint`} className="muted small">
            {hint}
          </span>
        )}
        {bad && (
          <span id={`${id}-err`} className="error small" role="alert">
            {error!.msg}
          </span>
        )}
      </div>
    );
  };
  // An error the API tied to no field shown here (or to none at all).
  const known = ["name", "ramMb", "vcpus", "disk.kind", "disk.path", "ip", "ha", "restartPriority", "node"];
  const general = error && (!error.field || !known.includes(error.field)) ? error.msg : null;

  return (
    <section className="panel" aria-labelledby="new-vm-h">
      <h2 id="new-vm-h">
        <button type="button" className="link-button" aria-expanded={open} aria-controls="new-vm-form" onClick={() => setOpen(!open)}>
          {open ? "▾" : "▸"} New VM
        </button>
      </h2>
      <span aria-live="polite" className="feedback">
        {done ? <span className="ok">{done}</span> : null}
      </span>
      {open && (
        <form id="new-vm-form" className="grid-form new-vm" onSubmit={(e) => void submit(e)} noValidate aria-label="New VM">
          {field("vm-name", "name", "Name", (a) => <input {...a} name="name" required autoComplete="off" value={form.name} onChange={(e) => set("name", e.target.value)} />, "a letter, then letters, digits, '_', '.' or '-'")}
          {field("vm-ram", "ramMb", "RAM (MB)", (a) => <input {...a} name="ramMb" type="number" min={1} required value={form.ramMb} onChange={(e) => set("ramMb", e.target.value)} />)}
          {field("vm-vcpus", "vcpus", "vCPUs", (a) => <input {...a} name="vcpus" type="number" min={1} required value={form.vcpus} onChange={(e) => set("vcpus", e.target.value)} />)}
          {field("vm-disk-kind", "disk.kind", "Disk kind", (a) => (
            <select {...a} name="diskKind" value={form.diskKind} onChange={(e) => setForm((f) => ({ ...f, diskKind: e.target.value as Form["diskKind"], ha: e.target.value === "local" ? false : f.ha }))}>
              <option value="network">network (shared storage)</option>
              <option value="local">local (this node only)</option>
            </select>
          ))}
          {field("vm-disk-path", "disk.path", "Disk path", (a) => <input {...a} name="diskPath" required autoComplete="off" placeholder="/run/ha-storage/vms/web1.disk" value={form.diskPath} onChange={(e) => set("diskPath", e.target.value)} />)}
          {field("vm-ip", "ip", "IP address (optional)", (a) => <input {...a} name="ip" autoComplete="off" inputMode="decimal" value={form.ip} onChange={(e) => set("ip", e.target.value)} />)}
          {field("vm-prio", "restartPriority", "Restart priority", (a) => <input {...a} name="restartPriority" type="number" min={-1000} max={1000} value={form.restartPriority} onChange={(e) => set("restartPriority", e.target.value)} />, "higher restarts first")}
          {field("vm-node", "node", "Node (optional)", (a) => (
            <select {...a} name="node" value={form.node} onChange={(e) => set("node", e.target.value)}>
              <option value="">any</option>
              {nodes.map((n) => (
                <option key={n.nodeid} value={String(n.nodeid)}>
                  {n.name}
                  {n.maintenance ? " (in maintenance)" : ""}
                </option>
              ))}
            </select>
          ), "it starts there if that node can take it now (a member, not in maintenance, enough free RAM); otherwise the cluster places it and the VM list says why")}
          <div className="field">
            <label className="switch" htmlFor="vm-ha">
              <input
                id="vm-ha"
                type="checkbox"
                name="ha"
                checked={form.ha}
                aria-invalid={error?.field === "ha"}
                aria-describedby={error?.field === "ha" ? "vm-ha-err" : undefined}
                onChange={(e) => set("ha", e.target.checked)}
              />
              HA (restart it on another node when its node fails)
            </label>
            {error?.field === "ha" && (
              <span id="vm-ha-err" className="error small" role="alert">
                {error.msg}
              </span>
            )}
          </div>
          <div>
            <button type="submit" disabled={busy}>
              Create VM
            </button>
          </div>
          {general && (
            <p className="error" role="alert">
              {general}
            </p>
          )}
        </form>
      )}
    </section>
  );
}
