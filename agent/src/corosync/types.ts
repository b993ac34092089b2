// Public types of the corosync client (re-exported by index.ts).

export type NodelistEntry = {
  nodeid: number;
  name?: string;
  ring0Addr?: string;
  prio: number; // default 0
  replication: boolean; // 'on'
  maintenance?: boolean; // 'on': never chosen for VMs, drained by the master
  raw: Record<string, string>;
};

export type VotequorumInfo = {
  nodeId: number;
  expectedVotes: number;
  highestExpected: number;
  totalVotes: number;
  quorum: number;
  quorate: boolean;
  flags: string[];
};

export type CpgMember = { nodeid: number; pid: number };

export type ClusterEvent =
  | { type: 'connected'; localNodeId: number }
  | { type: 'disconnected'; reason: string }
  | { type: 'quorum'; quorate: boolean; ringSeq: bigint; members: number[] } // members sorted ascending
  | { type: 'votequorum'; info: VotequorumInfo }
  | {
      type: 'cpg-membership';
      group: string;
      members: Array<{ nodeid: number; pid: number }>;
      joined: Array<{ nodeid: number; pid: number }>;
      left: Array<{ nodeid: number; pid: number; reason: number }>;
    }
  | { type: 'cpg-message'; group: string; nodeid: number; pid: number; data: Buffer }
  | { type: 'config'; nodes: NodelistEntry[]; configVersion: bigint; clusterName?: string; tokenMs?: number; consensusMs?: number };

export type ClusterSnapshot = {
  connected: boolean;
  localNodeId?: number;
  quorate: boolean;
  members: number[];
  ringSeq?: bigint;
  votequorum?: VotequorumInfo;
  nodes: NodelistEntry[];
  configVersion?: bigint;
  clusterName?: string;
  cpgMembers: Array<{ nodeid: number; pid: number }>;
};

// Function (not a narrower signature) so pino, console and test stubs all fit.
export type Logger = { info: Function; warn: Function; debug?: Function };

export type CorosyncClientOptions = {
  /** CPG group to join; default 'corolistener'; null to not join any group. */
  cpgGroup?: string | null;
  logger?: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
};
