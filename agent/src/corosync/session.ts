// One connection to corosync: the four library handles, opened together and closed together.
import { cmap, CMAP_TRACK_ADD, CMAP_TRACK_DELETE, CMAP_TRACK_MODIFY, CMAP_TRACK_PREFIX } from './cmap.ts';
import { cpg } from './cpg.ts';
import { CS_OK } from './errors.ts';
import { CONFIG_KEYS, type ClusterConfig, type CmapValue, configFromCmap } from './parse.ts';
import { quorum } from './quorum.ts';
import type { VotequorumInfo } from './types.ts';
import { votequorum } from './votequorum.ts';

export type LibName = 'quorum' | 'votequorum' | 'cmap' | 'cpg';

/** Registered koffi callback pointers (owned by the client, shared by all its sessions). */
export type RegisteredCallbacks = {
  quorum: unknown;
  vqQuorum: unknown;
  vqExpected: unknown;
  vqNodelist: unknown;
  cpgDeliver: unknown;
  cpgConfchg: unknown;
  cmapNotify: unknown;
};

const TRACK_ALL = CMAP_TRACK_ADD | CMAP_TRACK_DELETE | CMAP_TRACK_MODIFY;

export class Session {
  readonly handles: Partial<Record<LibName, bigint>> = {};
  readonly fds = new Map<number, LibName>();
  localNodeId = 0;
  joinedGroup: string | null = null;

  /** Opens all handles and starts tracking; on failure everything opened so far is finalized. */
  static open(cbs: RegisteredCallbacks): Session {
    const s = new Session();
    try {
      const h = s.handles;
      h.quorum = quorum.initialize(cbs.quorum);
      h.votequorum = votequorum.initialize({ quorum: cbs.vqQuorum, expected: cbs.vqExpected, nodelist: cbs.vqNodelist });
      h.cmap = cmap.initialize();
      h.cpg = cpg.initialize(cbs.cpgDeliver, cbs.cpgConfchg);
      s.fds.set(quorum.fdGet(h.quorum), 'quorum');
      s.fds.set(votequorum.fdGet(h.votequorum), 'votequorum');
      s.fds.set(cmap.fdGet(h.cmap), 'cmap');
      s.fds.set(cpg.fdGet(h.cpg), 'cpg');
      s.localNodeId = cpg.localGet(h.cpg);
      quorum.trackStart(h.quorum);
      votequorum.trackStart(h.votequorum);
      cmap.trackAdd(h.cmap, 'nodelist.', TRACK_ALL | CMAP_TRACK_PREFIX, cbs.cmapNotify);
      cmap.trackAdd(h.cmap, 'totem.config_version', TRACK_ALL, cbs.cmapNotify);
      // The effective timing (token, consensus) changes on a reload that changes totem settings.
      cmap.trackAdd(h.cmap, 'runtime.config.totem.', TRACK_ALL | CMAP_TRACK_PREFIX, cbs.cmapNotify);
      return s;
    } catch (err) {
      s.close(false);
      throw err;
    }
  }

  /** Runs the library's CS_DISPATCH_ALL, which invokes its callbacks synchronously. */
  dispatch(lib: LibName): number {
    const h = this.handles[lib];
    if (h === undefined) return CS_OK;
    switch (lib) {
      case 'quorum': return quorum.dispatch(h);
      case 'votequorum': return votequorum.dispatch(h);
      case 'cmap': return cmap.dispatch(h);
      case 'cpg': return cpg.dispatch(h);
    }
  }

  readConfig(): ClusterConfig {
    const h = this.handles.cmap!;
    const values: Map<string, CmapValue> = cmap.getPrefix(h, 'nodelist.');
    for (const key of CONFIG_KEYS) {
      const v = cmap.get(h, key);
      if (v !== undefined) values.set(key, v);
    }
    return configFromCmap(values);
  }

  readVotequorum(): VotequorumInfo {
    return votequorum.getInfo(this.handles.votequorum!, this.localNodeId);
  }

  readQuorate(): boolean {
    return quorum.getQuorate(this.handles.quorum!);
  }

  join(group: string): number {
    const rc = cpg.join(this.handles.cpg!, group);
    if (rc === CS_OK) this.joinedGroup = group;
    return rc;
  }

  owns(lib: LibName, handle: bigint): boolean {
    return this.handles[lib] === handle;
  }

  /** Leaves the group (if still connected) and finalizes every handle; errors are ignored. */
  close(connected: boolean): void {
    const h = this.handles;
    if (connected && this.joinedGroup && h.cpg !== undefined) cpg.leave(h.cpg, this.joinedGroup);
    this.joinedGroup = null;
    if (h.cpg !== undefined) cpg.finalize(h.cpg);
    if (h.cmap !== undefined) cmap.finalize(h.cmap); // also drops its tracks
    if (h.votequorum !== undefined) votequorum.finalize(h.votequorum);
    if (h.quorum !== undefined) quorum.finalize(h.quorum);
    for (const k of Object.keys(h) as LibName[]) delete h[k];
    this.fds.clear();
  }
}
