// What the parts of one node core share: identity, settings, the current time, the replicated
// state and the output of the step in progress.

import type { Replica } from './replicated.ts';
import type { CoreAction, CpgMessage, Decision, DecisionKind, NodeId, Settings } from './types.ts';

/**
 * Deliberate bugs for the simulator's self-test (proves the checker catches them).
 * Never set in production.
 */
export type Sabotage = 'no-lease' | 'no-ip-wait' | 'no-fence-wait' | 'keep-vms-on-quorum-loss' | 'no-start-handshake';

const MAX_REASONS = 30;

/** Actions and decisions of the current step, plus the last few reasons for `view()`. */
export class Output {
  actions: CoreAction[] = [];
  decisions: Decision[] = [];
  readonly recent: string[] = [];
  now = 0;

  reset(now: number): void {
    this.actions = [];
    this.decisions = [];
    this.now = now;
  }

  act(a: CoreAction): void {
    this.actions.push(a);
  }

  send(msg: CpgMessage, reason: string): void {
    this.actions.push({ type: 'SendCpg', msg, reason });
  }

  decide(kind: DecisionKind, reason: string): void {
    this.decisions.push({ at: this.now, kind, reason });
    this.recent.push(`${this.now} ${kind}: ${reason}`);
    if (this.recent.length > MAX_REASONS) this.recent.shift();
  }
}

export interface CoreContext {
  readonly id: NodeId;
  readonly rep: Replica;
  readonly out: Output;
  readonly sabotage: Sabotage | undefined;
  /** See CoreOptions.leftoversReleased. */
  readonly leftoversReleased: boolean;
  s: Settings;
  now: number;
  startedAt: number;
}
