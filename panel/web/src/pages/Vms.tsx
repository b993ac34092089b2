import { useEffect, useMemo, useState } from "react";
import { del, patch, type NodeRow, type Vm } from "../api.ts";
import { ErrorBox, useAction } from "../components.tsx";
import { useData } from "../hooks.ts";
import { NewVmForm } from "../new-vm.tsx";

/** How often the list is re-read while a new VM waits for the master (its DB update sends no event). */
const PENDING_POLL_MS = 2000;

export function VmsPage({ admin }: { admin: boolean }) {
  const { data, error, reload } = useData<{ vms: Vm[] }>("/api/vms");
  const nodes = useData<{ nodes: NodeRow[] }>("/api/nodes").data?.nodes ?? [];
  const [text, setText] = useState("");
  const [ha, setHa] = useState<"all" | "yes" | "no">("all");
  const [node, setNode] = useState("all");
  const save = useAction();
  const nodeName = (id: number | null | undefined) => (id == null ? "—" : (nodes.find((n) => n.nodeid === id)?.name ?? `n${id}`));
  const shown = useMemo(
    () =>
      (data?.vms ?? []).filter(
        (v) => v.name.toLowerCase().includes(text.trim().toLowerCase()) && (ha === "all" || v.ha === (ha === "yes")) && (node === "all" || String(v.nodeid) === node),
      ),
    [data, text, ha, node],
  );
  const change = (v: Vm, body: Partial<Vm>, ok: string) => save.run(() => patch(`/api/vms/${encodeURIComponent(v.name)}`, body).then(reload), ok);
  const remove = (v: Vm) => save.run(() => del(`/api/vms/${encodeURIComponent(v.name)}`).then(reload), `${v.name} removed`);
  // VMs created here, followed until they are placed (defined, then given a node).
  const [created, setCreated] = useState<string[]>([]);
  const anyPending = (data?.vms ?? []).some((v) => v.definitionState === "pending" || (created.includes(v.name) && v.definitionState === "defined" && v.nodeid == null));
  useEffect(() => {
    if (!anyPending) return;
    const t = setInterval(reload, PENDING_POLL_MS);
    return () => clearInterval(t);
  }, [anyPending, reload]);
  return (
    <>
      <h1>Virtual machines</h1>
      {admin && <NewVmForm nodes={nodes} onCreated={(name) => (setCreated((c) => [...c, name]), reload())} />}
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Filter by name
          <input type="search" value={text} onChange={(e) => setText(e.target.value)} name="q" />
        </label>
        <label>
          HA
          <select value={ha} onChange={(e) => setHa(e.target.value as typeof ha)}>
            <option value="all">all</option>
            <option value="yes">HA only</option>
            <option value="no">not HA</option>
          </select>
        </label>
        <label>
          Node
          <select value={node} onChange={(e) => setNode(e.target.value)}>
            <option value="all">all</option>
            {nodes.map((n) => (
              <option key={n.nodeid} value={String(n.nodeid)}>
                {n.name}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ErrorBox error={error} />
      {save.feedback}
      <div className="table-wrap">
        <table>
          <caption className="sr-only">VMs, {shown.length} shown</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Node</th>
              <th scope="col">State</th>
              <th scope="col">Storage</th>
              <th scope="col">HA</th>
              <th scope="col">Restart priority</th>
              <th scope="col">Resources</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((v) => (
              <tr key={v.name} data-testid={`vm-${v.name}`}>
                <th scope="row">{v.name}</th>
                <td>
                  {v.nodeid != null ? <a href={`#/nodes/${v.nodeid}`}>{nodeName(v.nodeid)}</a> : "—"}
                  {v.requestedNodeid != null && v.requestedNodeid !== v.nodeid ? (
                    <span className="muted" data-testid={`vm-requested-${v.name}`}>
                      {" "}
                      ({nodeName(v.requestedNodeid)} requested)
                    </span>
                  ) : null}
                  {v.liveOwner != null && v.liveOwner !== v.nodeid ? <span className="pending"> (live: {nodeName(v.liveOwner)})</span> : null}
                </td>
                <td>
                  <DefinitionState vm={v} admin={admin} busy={save.busy} onRemove={() => void remove(v)} />
                  {v.definitionState === "defined" && <span className={`vmstate vm-${v.state}`}>{v.state}</span>}
                  {/* The master's recovery note, e.g. "unrecoverable: its disk is local to failed n2". */}
                  {v.note ? (
                    <span className={`reason${v.note.includes("unrecoverable") ? " error" : ""}`} data-testid={`vm-note-${v.name}`}>
                      {" "}
                      {v.note}
                    </span>
                  ) : null}
                </td>
                <td>{v.storage}</td>
                <td>
                  <label className="switch">
                    <input
                      type="checkbox"
                      checked={v.ha}
                      disabled={!admin || save.busy || (v.storage === "local" && !v.ha)}
                      aria-label={`HA for ${v.name}`}
                      title={v.storage === "local" ? "A local-disk VM cannot be HA" : undefined}
                      onChange={(e) => void change(v, { ha: e.target.checked }, `HA ${e.target.checked ? "on" : "off"} for ${v.name}`)}
                    />
                    <span aria-hidden="true">{v.ha ? "on" : "off"}</span>
                  </label>
                </td>
                <td>
                  <input
                    type="number"
                    className="narrow"
                    defaultValue={v.restartPriority}
                    key={`${v.name}-${v.restartPriority}`}
                    min={-1000}
                    max={1000}
                    disabled={!admin}
                    aria-label={`Restart priority for ${v.name}`}
                    onBlur={(e) => Number(e.target.value) !== v.restartPriority && void change(v, { restartPriority: Number(e.target.value) }, `Restart priority saved for ${v.name}`)}
                    onKeyDown={(e) => e.key === "Enter" && e.currentTarget.blur()}
                  />
                </td>
                <td>
                  {v.vcpus} vCPU · {v.ramMb} MB
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data && shown.length === 0 && <p>No VM matches.</p>}
    </>
  );
}

/** Where a panel-created VM's definition is; nothing for a VM that is simply defined. */
function DefinitionState({ vm, admin, busy, onRemove }: { vm: Vm; admin: boolean; busy: boolean; onRemove: () => void }) {
  if (vm.definitionState === "pending") {
    return (
      <span className="defstate pending" data-testid={`vm-def-${vm.name}`}>
        definition pending: the master writes it to the shared storage
        {vm.definitionError ? <span className="reason"> ({vm.definitionError})</span> : null}
      </span>
    );
  }
  if (vm.definitionState === "failed") {
    return (
      <span className="defstate error" data-testid={`vm-def-${vm.name}`}>
        definition failed: {vm.definitionError ?? "no reason recorded"}{" "}
        {admin && (
          <button type="button" className="link-button" disabled={busy} onClick={onRemove} aria-label={`Remove ${vm.name}`}>
            Remove
          </button>
        )}
      </span>
    );
  }
  // Defined, with the master's note: the requested node could not take it, placement chose.
  if (vm.definitionError) {
    return (
      <span className="reason" data-testid={`vm-def-${vm.name}`}>
        {vm.definitionError}{" "}
      </span>
    );
  }
  return null;
}
