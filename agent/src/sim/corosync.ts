// The corosync model: rings (who can talk to whom), total order within a ring, CPG group
// membership with virtual synchrony, and votequorum per ring.
//
// - A ring stops delivering as soon as its membership no longer matches connectivity. A new
//   membership forms after token + consensus (someone was lost) or joinMs (only joins).
// - Messages are ordered per ring and reach every CPG member in that order; messages that could
//   not be ordered before the ring stopped are ordered in the sender's next ring.
// - CPG membership changes go through the same order, so every member sees the same sequence.
// - An agent that dies leaves the CPG group at once (corosync notices the IPC close); the node
//   stays in the ring and in votequorum.

import type { CoreEvent, NodeId } from '../core/types.ts';
import type { Ring, SimNode } from './model.ts';
import type { World } from './world.ts';

export class Corosync {
  readonly rings = new Map<number, Ring>();
  private nextRingId = 1;
  private reformAt: number | null = null;
  /** Messages that could not be ordered yet (their ring stopped). */
  private pending: Array<{ from: NodeId; agentGen: number; msg: unknown }> = [];

  constructor(
    private readonly w: World,
    private readonly need: number,
  ) {}

  ringOf(n: SimNode): Ring | undefined {
    return n.ringId === null ? undefined : this.rings.get(n.ringId);
  }

  /** cpg_mcast from an agent. */
  send(n: SimNode, msg: unknown): void {
    const { w } = this;
    if (n.ringId === null) return; // not joined to any ring yet: cpg_mcast would fail
    // The effect layer serialises the message; receivers get their own copy.
    const wire: unknown = JSON.parse(JSON.stringify(msg));
    // Total order keeps each sender's messages in sending order (FIFO per sender).
    const at = Math.max(w.now + w.rand(w.t.cpgMs), n.lastSequenced);
    n.lastSequenced = at;
    w.schedule(at, { kind: 'sequence', from: n.id, agentGen: n.agentGen, msg: wire });
  }

  /**
   * Order a message in the sender's current ring (possibly newer than the one it was sent in:
   * messages not yet ordered when a ring stops go to the next one). If that ring is stopped, it
   * waits for the re-formed ring; the sender's later messages then queue behind it (FIFO).
   */
  onSequence(from: NodeId, agentGen: number, msg: unknown): void {
    const sender = this.w.node(from);
    if (sender.agentGen !== agentGen || !sender.agentUp) return; // the sender died before this left its node
    const ring = this.ringOf(sender);
    const waiting = this.pending.some((p) => p.from === from);
    if (!waiting && ring !== undefined && ring.alive && ring.joined.get(from) === agentGen) this.deliver(ring, from, msg);
    else this.pending.push({ from, agentGen, msg });
  }

  /** A new agent joins the CPG group (now if its ring runs, else when it re-forms). */
  agentStarted(n: SimNode): void {
    const ring = this.ringOf(n);
    if (ring === undefined || !ring.alive) return;
    this.giveQuorum(n, ring);
    ring.joined.set(n.id, n.agentGen);
    this.deliverConfchg(ring);
  }

  /** An agent died: it leaves the CPG group (a stopped ring reports it when it re-forms). */
  agentStopped(n: SimNode): void {
    const ring = this.ringOf(n);
    if (ring === undefined || !ring.alive || !ring.joined.has(n.id)) return;
    ring.joined.delete(n.id);
    this.deliverConfchg(ring);
  }

  /** Connectivity changed: stop affected rings and schedule the new membership. */
  topologyChanged(): void {
    const { w } = this;
    const comps = this.components();
    const keys = new Set(comps.map((c) => this.ringKey(c)));
    let loss = false;
    for (const ring of this.rings.values()) {
      if (ring.alive && !keys.has(ring.key)) {
        // Someone left (the token is lost) or someone must join: either way the ring stops.
        if (!comps.some((c) => ring.members.every((m) => c.includes(m)))) loss = true;
        ring.alive = false;
      }
    }
    const ringKeys = new Set([...this.rings.values()].map((r) => r.key));
    const changed = loss || comps.some((c) => !ringKeys.has(this.ringKey(c))) || [...this.rings.values()].some((r) => !r.alive);
    if (!changed) return;
    const at = w.now + (loss ? w.t.tokenMs + w.t.consensusMs : w.t.joinMs);
    if (this.reformAt === null || at > this.reformAt) {
      this.reformAt = at;
      w.schedule(at, { kind: 'reform' });
    }
  }

  onReform(at: number): void {
    if (this.reformAt !== at) return; // postponed meanwhile
    this.reformAt = null;
    this.reform();
  }

  private giveQuorum(n: SimNode, ring: Ring): void {
    n.needsQuorum = false;
    this.w.arrive(n, { type: 'quorum', now: 0, quorate: ring.majority, members: [...ring.members] }, -1, 0, ring.majority);
  }

  /** A CPG membership change, ordered with the messages of the ring. */
  private deliverConfchg(ring: Ring): void {
    const { w } = this;
    ring.pos += 1;
    const members = [...ring.joined.keys()].sort((a, b) => a - b);
    for (const m of members) {
      w.arrive(w.node(m), { type: 'cpg-membership', now: 0, members: [...members] }, ring.id, ring.pos, ring.majority, w.rand(w.t.deliverMs));
    }
  }

  private deliver(ring: Ring, from: NodeId, msg: unknown): void {
    const { w } = this;
    ring.pos += 1;
    for (const m of ring.joined.keys()) {
      w.arrive(w.node(m), { type: 'cpg-message', now: 0, from, msg }, ring.id, ring.pos, ring.majority, w.rand(w.t.deliverMs));
    }
  }

  /** Nodes whose corosync runs, grouped by who can talk to whom. */
  private components(): NodeId[][] {
    const groups = new Map<string, NodeId[]>();
    for (const n of this.w.nodes) {
      if (!n.up || n.frozen) continue;
      const key = n.ctrlUp ? `g${n.group}` : `solo${n.id}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = []));
      g.push(n.id);
    }
    return [...groups.values()];
  }

  /** A ring is the same only if the same incarnations are in it (a rebooted node forms a new ring). */
  private ringKey(comp: NodeId[]): string {
    return comp.map((id) => `${id}.${this.w.node(id).gen}`).join(',');
  }

  /** A ring resumes with the same nodes: report agents that died (leave) and started (join). */
  private rejoin(ring: Ring, cpg: NodeId[]): void {
    const { w } = this;
    const before = ring.joined.size;
    for (const [m, g] of [...ring.joined]) if (!w.node(m).agentUp || w.node(m).agentGen !== g) ring.joined.delete(m);
    if (ring.joined.size !== before) this.deliverConfchg(ring);
    const joining = cpg.filter((m) => !ring.joined.has(m));
    for (const m of joining) {
      ring.joined.set(m, w.node(m).agentGen);
      if (w.node(m).needsQuorum) this.giveQuorum(w.node(m), ring);
    }
    if (joining.length > 0) this.deliverConfchg(ring);
  }

  private reform(): void {
    const { w } = this;
    const keep = new Set<number>();
    for (const comp of this.components()) {
      const key = this.ringKey(comp);
      const cpg = comp.filter((m) => w.node(m).agentUp);
      const reused = [...this.rings.values()].find((r) => r.key === key);
      if (reused !== undefined) {
        reused.alive = true;
        keep.add(reused.id);
        this.rejoin(reused, cpg);
        continue;
      }
      const ring: Ring = {
        id: this.nextRingId++,
        members: comp,
        key,
        alive: true,
        majority: comp.length >= this.need,
        joined: new Map(cpg.map((m) => [m, w.node(m).agentGen])),
        pos: 0,
        masterAt: new Map(),
      };
      this.rings.set(ring.id, ring);
      keep.add(ring.id);
      w.log(`ring ${ring.id} forms [${comp.map((m) => `n${m}`).join(',')}]${ring.majority ? ' (quorate)' : ''}`);
      for (const m of comp) w.node(m).ringId = ring.id;
      for (const m of cpg) {
        const n = w.node(m);
        n.needsQuorum = false;
        const membership: CoreEvent = { type: 'cpg-membership', now: 0, members: [...cpg] };
        const quorum: CoreEvent = { type: 'quorum', now: 0, quorate: ring.majority, members: [...comp] };
        // votequorum and CPG are separate channels: either may arrive first.
        const first = w.rng.chance(0.5);
        w.arrive(n, first ? quorum : membership, first ? -1 : ring.id, 0, ring.majority, w.rand(w.t.deliverMs));
        w.arrive(n, first ? membership : quorum, first ? ring.id : -1, 0, ring.majority, w.rand(w.t.deliverMs));
      }
    }
    for (const [id] of this.rings) if (!keep.has(id)) this.rings.delete(id);
    for (const n of w.nodes) if (n.ringId !== null && !keep.has(n.ringId)) n.ringId = null;
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) {
      const sender = w.node(p.from);
      const ring = this.ringOf(sender);
      if (sender.agentGen === p.agentGen && sender.agentUp && ring !== undefined && ring.joined.get(p.from) === p.agentGen) this.deliver(ring, p.from, p.msg);
    }
    // Components may have changed again meanwhile (a reform is already scheduled then).
    this.topologyChanged();
  }
}
