// Public API of the HA core (see README.md in this folder).
export * from './types.ts';
export { createNodeCore, type CoreOptions, type NodeCore, type Sabotage } from './node-core.ts';
export { electMaster, notMasterReason, quorumNeed, resolveRound } from './election.ts';
export { placeVms, requestedNodeVerdict, ramOwnedByNode, type PlacementNode, type PlacementVm, type PlacementResult, type RequestedNodeFacts, type RequestedNodeVerdict } from './placement.ts';
export { validateCpgMessage } from './messages.ts';
export { clusterStatus, selfStatusFrom, recoverySafety, isUnstable } from './status.ts';
export { watchdogDeadline, leaseFresh } from './lease.ts';
export { checkAdmission, type AdmissionNode, type AdmissionVm, type AdmissionReport, type NodeLoss } from './admission.ts';
export { copiesQuorum } from './db-role.ts';
