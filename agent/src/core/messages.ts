// Pure validation of incoming CPG messages. Any member can send anything (a bug, a lie, a newer
// version): a message that does not match exactly is dropped with a reason, never half-applied.

import type { CpgMessage, OwnerTriple, ReportFields, SelfStatus, VmSpec } from './types.ts';

export type Validated = { ok: true; msg: CpgMessage } | { ok: false; reason: string };

const MAX_LIST = 10_000;
const MAX_TEXT = 500;
const SELF_STATUSES: ReadonlySet<string> = new Set<SelfStatus>(['starting', 'member', 'excluded', 'network_isolation', 'storage_isolation']);

class Invalid extends Error {}

function fail(what: string): never {
  throw new Invalid(what);
}

function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${what} is not an object`);
  return x as Record<string, unknown>;
}
function int(x: unknown, what: string, min = 0): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) fail(`${what} must be an integer >= ${min}`);
  return x;
}
function num(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${what} must be a finite number`);
  return x;
}
function bool(x: unknown, what: string): boolean {
  if (typeof x !== 'boolean') fail(`${what} must be a boolean`);
  return x;
}
function text(x: unknown, what: string): string {
  if (typeof x !== 'string' || x.length > MAX_TEXT) fail(`${what} must be a string of at most ${MAX_TEXT} chars`);
  return x;
}
function vmId(x: unknown, what: string): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > 200) fail(`${what} must be a VM id`);
  return x;
}
function list<T>(x: unknown, what: string, each: (v: unknown, w: string) => T): T[] {
  if (!Array.isArray(x) || x.length > MAX_LIST) fail(`${what} must be an array of at most ${MAX_LIST}`);
  return x.map((v, i) => each(v, `${what}[${i}]`));
}
function nodeOrNull(x: unknown, what: string): number | null {
  return x === null ? null : int(x, what, 1);
}
function status(x: unknown, what: string): SelfStatus {
  if (typeof x !== 'string' || !SELF_STATUSES.has(x)) fail(`${what} is not a known status`);
  return x as SelfStatus;
}
function owners(x: unknown, what: string): OwnerTriple[] {
  return list(x, what, (t, w) => {
    if (!Array.isArray(t) || t.length !== 3) fail(`${w} must be [vm, node|null, epoch]`);
    return [vmId(t[0], `${w}.vm`), nodeOrNull(t[1], `${w}.node`), int(t[2], `${w}.epoch`)] as OwnerTriple;
  });
}
function vmSpec(x: unknown, what: string): VmSpec {
  const o = obj(x, what);
  const storage = o['storage'];
  if (storage !== 'shared' && storage !== 'local') fail(`${what}.storage must be shared|local`);
  const spec: VmSpec = {
    id: vmId(o['id'], `${what}.id`),
    ramMb: int(o['ramMb'], `${what}.ramMb`),
    ha: bool(o['ha'], `${what}.ha`),
    storage,
    restartPriority: num(o['restartPriority'], `${what}.restartPriority`),
  };
  const desired = o['desired'];
  if (desired !== undefined) {
    if (desired !== 'running' && desired !== 'stopped') fail(`${what}.desired must be running|stopped`);
    spec.desired = desired;
  }
  return spec;
}

/** `{ key: value }` if the field is present (and a valid integer >= min), `{}` if absent. */
function optionalInt<K extends string>(m: Record<string, unknown>, key: K, min: number): { [k in K]?: number } {
  return m[key] === undefined ? {} : ({ [key]: int(m[key], key, min) } as { [k in K]?: number });
}

/** The fields every hello and report carry (grace, lease-terms and DB fields are absent in messages of older agents). */
function reportFields(m: Record<string, unknown>): ReportFields {
  const out: ReportFields = {
    prio: num(m['prio'], 'prio'),
    status: status(m['status'], 'status'),
    running: list(m['running'], 'running', vmId),
    configVersion: int(m['configVersion'], 'configVersion'),
    nodeCount: int(m['nodeCount'], 'nodeCount', 1),
    failback: bool(m['failback'], 'failback'),
  };
  if (m['graceLeftMs'] !== undefined) out.graceLeftMs = int(m['graceLeftMs'], 'graceLeftMs');
  if (m['quorumMembers'] !== undefined) out.quorumMembers = list(m['quorumMembers'], 'quorumMembers', (x, w) => int(x, w, 1));
  if (m['starting'] !== undefined) out.starting = list(m['starting'], 'starting', vmId);
  if (m['leaseTerms'] !== undefined) out.leaseTerms = bool(m['leaseTerms'], 'leaseTerms');
  if (m['dbEligible'] !== undefined) out.dbEligible = bool(m['dbEligible'], 'dbEligible');
  if (m['dbReason'] !== undefined) out.dbReason = text(m['dbReason'], 'dbReason');
  return out;
}

function parse(raw: unknown): CpgMessage {
  const m = obj(raw, 'message');
  if (m['v'] !== 1) fail(`unsupported message version ${JSON.stringify(m['v'])}`);
  const kind = m['kind'];
  switch (kind) {
    case 'hello':
      return {
        v: 1,
        kind,
        members: list(m['members'], 'members', (x, w) => int(x, w, 1)),
        term: int(m['term'], 'term'),
        claim: bool(m['claim'], 'claim'),
        majority: bool(m['majority'], 'majority'),
        msSinceRenewal: int(m['msSinceRenewal'], 'msSinceRenewal'),
        renewedBy: nodeOrNull(m['renewedBy'], 'renewedBy'),
        ...optionalInt(m, 'renewLeaseMs', 1),
        ...optionalInt(m, 'renewReleaseBudgetMs', 1),
        owners: owners(m['owners'], 'owners'),
        ...reportFields(m),
      };
    case 'renew':
      // leaseMs/releaseBudgetMs: the holder's lease terms; absent in older agents' renewals.
      return { v: 1, kind, term: int(m['term'], 'term'), sentAt: num(m['sentAt'], 'sentAt'), ...optionalInt(m, 'leaseMs', 1), ...optionalInt(m, 'releaseBudgetMs', 1) };
    case 'report':
      return { v: 1, kind, ...reportFields(m) };
    case 'elect':
      return { v: 1, kind, reason: text(m['reason'], 'reason') };
    case 'released':
      return { v: 1, kind, term: int(m['term'], 'term') };
    case 'vm-table':
      return { v: 1, kind, term: int(m['term'], 'term'), vms: list(m['vms'], 'vms', vmSpec), owners: owners(m['owners'], 'owners') };
    case 'assign': {
      const from = nodeOrNull(m['from'], 'from');
      const fromEpoch = int(m['fromEpoch'], 'fromEpoch');
      const epoch = int(m['epoch'], 'epoch');
      if (epoch <= fromEpoch) fail('epoch must be greater than fromEpoch');
      return { v: 1, kind, term: int(m['term'], 'term'), vm: vmId(m['vm'], 'vm'), from, fromEpoch, to: int(m['to'], 'to', 1), epoch, reason: text(m['reason'], 'reason') };
    }
    case 'start':
      return { v: 1, kind, vm: vmId(m['vm'], 'vm'), epoch: int(m['epoch'], 'epoch'), sentAt: num(m['sentAt'], 'sentAt') };
    case 'drain':
      return { v: 1, kind, term: int(m['term'], 'term'), vm: vmId(m['vm'], 'vm'), node: int(m['node'], 'node', 1), epoch: int(m['epoch'], 'epoch'), reason: text(m['reason'], 'reason') };
    case 'drained':
      return { v: 1, kind, term: int(m['term'], 'term'), vm: vmId(m['vm'], 'vm'), epoch: int(m['epoch'], 'epoch') };
    default:
      return fail(`unknown message kind ${JSON.stringify(kind)}`);
  }
}

/** Validate an incoming message. Never throws. */
export function validateCpgMessage(raw: unknown): Validated {
  try {
    return { ok: true, msg: parse(raw) };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, reason: e.message };
    return { ok: false, reason: `unreadable message: ${String(e)}` };
  }
}
