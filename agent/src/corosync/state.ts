// The client's view of the cluster: what snapshot() returns and the events that describe it.
import type { ClusterConfig } from './parse.ts';
import type { ClusterEvent, ClusterSnapshot, CpgMember, VotequorumInfo } from './types.ts';

type ConfigEvent = Extract<ClusterEvent, { type: 'config' }>;

const eventJson = (ev: ClusterEvent) => JSON.stringify(ev, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));

export class ClusterState {
  private s: ClusterSnapshot = { connected: false, quorate: false, members: [], nodes: [], cpgMembers: [] };
  // Only part of 'config' events (and timing()), not of the snapshot.
  private tokenMs: number | undefined;
  private consensusMs: number | undefined;
  private lastConfigJson = '';

  get connected(): boolean {
    return this.s.connected;
  }

  /** A deep copy, so callers can't mutate our state. */
  snapshot(): ClusterSnapshot {
    const s = this.s;
    const copy: ClusterSnapshot = {
      ...s,
      members: [...s.members],
      nodes: s.nodes.map((n) => ({ ...n, raw: { ...n.raw } })),
      cpgMembers: s.cpgMembers.map((m) => ({ ...m })),
    };
    if (s.votequorum) copy.votequorum = { ...s.votequorum, flags: [...s.votequorum.flags] };
    return copy;
  }

  /** Forgets per-connection state before (re)reading it from a new session. */
  reset(): void {
    this.s = { ...this.s, connected: false, quorate: false, members: [], cpgMembers: [] };
    delete this.s.ringSeq;
    delete this.s.votequorum;
  }

  setQuorum(quorate: boolean, ringSeq: bigint, members: number[]): ClusterEvent {
    Object.assign(this.s, { quorate, ringSeq, members: [...members].sort((a, b) => a - b) });
    return { type: 'quorum', quorate, ringSeq, members: [...this.s.members] };
  }

  setQuorate(quorate: boolean): void {
    this.s.quorate = quorate;
  }

  setVotequorum(info: VotequorumInfo): ClusterEvent {
    this.s.votequorum = info;
    return { type: 'votequorum', info: { ...info, flags: [...info.flags] } };
  }

  /** Returns the 'config' event, or null if nothing visible changed (e.g. a no-op reload). */
  setConfig(cfg: ClusterConfig): ConfigEvent | null {
    this.s.nodes = cfg.nodes;
    this.s.configVersion = cfg.configVersion;
    if (cfg.clusterName !== undefined) this.s.clusterName = cfg.clusterName;
    else delete this.s.clusterName;
    this.tokenMs = cfg.tokenMs;
    this.consensusMs = cfg.consensusMs;
    const ev = this.configEvent();
    const json = eventJson(ev);
    if (json === this.lastConfigJson) return null;
    this.lastConfigJson = json;
    return ev;
  }

  /** corosync's effective totem timing (runtime.config.totem.*), as last read. */
  timing(): { tokenMs?: number; consensusMs?: number } {
    const t: { tokenMs?: number; consensusMs?: number } = {};
    if (this.tokenMs !== undefined) t.tokenMs = this.tokenMs;
    if (this.consensusMs !== undefined) t.consensusMs = this.consensusMs;
    return t;
  }

  setCpgMembers(members: CpgMember[]): void {
    this.s.cpgMembers = members.map((m) => ({ ...m }));
  }

  /** Marks the connection up; returns 'connected' followed by the full current state. */
  connect(localNodeId: number): ClusterEvent[] {
    Object.assign(this.s, { connected: true, localNodeId });
    const s = this.s;
    const events: ClusterEvent[] = [{ type: 'connected', localNodeId }];
    if (s.ringSeq !== undefined) events.push({ type: 'quorum', quorate: s.quorate, ringSeq: s.ringSeq, members: [...s.members] });
    if (s.votequorum) events.push({ type: 'votequorum', info: { ...s.votequorum, flags: [...s.votequorum.flags] } });
    const config = this.configEvent();
    this.lastConfigJson = eventJson(config);
    events.push(config);
    return events;
  }

  /** Without corosync nothing is known about quorum; the last config stays as a hint. */
  disconnect(): void {
    this.reset();
  }

  private configEvent(): ConfigEvent {
    const s = this.s;
    const ev: ConfigEvent = {
      type: 'config',
      nodes: s.nodes.map((n) => ({ ...n, raw: { ...n.raw } })),
      configVersion: s.configVersion ?? 0n,
    };
    if (s.clusterName !== undefined) ev.clusterName = s.clusterName;
    if (this.tokenMs !== undefined) ev.tokenMs = this.tokenMs;
    if (this.consensusMs !== undefined) ev.consensusMs = this.consensusMs;
    return ev;
  }
}
