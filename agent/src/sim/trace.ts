// Human-readable trace lines for `cli.ts --trace`: what each node received, decided and did.
// Routine traffic (ticks, heartbeats, renewals) is left out unless something happened.

import type { CoreAction, CoreEvent, Decision } from '../core/types.ts';

const ROUTINE: ReadonlySet<string> = new Set(['WriteHeartbeat', 'ReadHeartbeats', 'ProbeTestIp']);
const QUIET_EVENTS: ReadonlySet<string> = new Set(['tick', 'storage-write', 'storage-read', 'test-ip']);

export function traceStep(node: number, ev: CoreEvent, actions: readonly CoreAction[], decisions: readonly Decision[]): string[] {
  const interesting = actions.filter((a) => !ROUTINE.has(a.type) && !(a.type === 'SendCpg' && a.msg.kind === 'renew'));
  if (QUIET_EVENTS.has(ev.type) && interesting.length === 0 && decisions.length === 0) return [];
  return [
    `n${node} <- ${summarizeEvent(ev)}`,
    ...decisions.map((d) => `n${node}    ${d.kind}: ${d.reason}`),
    ...interesting.map((a) => `n${node}    -> ${summarizeAction(a)}`),
  ];
}

function summarizeEvent(ev: CoreEvent): string {
  switch (ev.type) {
    case 'cpg-message': {
      const m = ev.msg as { kind?: string; term?: number };
      return `cpg ${m.kind ?? '?'} from n${ev.from}${m.term !== undefined ? ` t${m.term}` : ''}`;
    }
    case 'cpg-membership':
      return `cpg-membership [${ev.members.join(',')}]`;
    case 'quorum':
      return `quorum ${ev.quorate ? 'yes' : 'NO'} [${ev.members.join(',')}]`;
    case 'action-result':
      return `result ${ev.action.type}${'vm' in ev.action ? ` ${ev.action.vm}` : ''} ${ev.ok ? 'ok' : 'FAILED'}`;
    case 'db-health':
      return `db-health ${ev.eligible ? 'eligible' : `NOT eligible: ${ev.reason}`}`;
    case 'storage-write':
      return `storage-write ${ev.ok ? 'ok' : 'FAILED'}`;
    case 'storage-read':
      return `storage-read ${ev.ok ? 'ok' : 'FAILED'}`;
    default:
      return ev.type;
  }
}

function summarizeAction(a: CoreAction): string {
  switch (a.type) {
    case 'SendCpg': {
      const m = a.msg;
      const detail = m.kind === 'assign' ? ` ${m.vm} n${m.from}->n${m.to} e${m.epoch}` : m.kind === 'start' ? ` ${m.vm}` : '';
      return `SendCpg ${m.kind}${detail}`;
    }
    case 'StartVm':
      return `StartVm ${a.vm} e${a.epoch}: ${a.reason}`;
    case 'StopVm':
      return `StopVm ${a.vm}: ${a.reason}`;
    case 'SetOwnership':
      return `SetOwnership ${a.vm} -> n${a.node} e${a.epoch}`;
    case 'SetNodeStatus':
      return `SetNodeStatus n${a.nodeid} ${a.status}`;
    case 'PromoteDatabase':
      return `PromoteDatabase t${a.term}: ${a.reason}`;
    default:
      return `${a.type}: ${a.reason}`;
  }
}
