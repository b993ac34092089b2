// The nemesis for the replicated database (see run.ts): seeded faults, a client writing through the
// panel, and checkers for lost and stale writes, split IPs, double VMs, heal->writable and replicas.
export { makeSchedule, describeFault, formatSchedule, minorityPeer, FAULT_KINDS, type Fault, type FaultKind, type ScheduleOptions } from "./schedule.ts";
export { runNemesis, type NemesisOptions } from "./run.ts";
export { formatSummary, percentile, divergedNodes, buildReport, type NemesisReport } from "./report.ts";
export { NemesisClient, usernameOf, type ClientOptions } from "./client.ts";
export * from "./history.ts";
export { checkLostWrites } from "./checkers/lost-writes.ts";
export { checkStaleReads } from "./checkers/stale-reads.ts";
export { splitIpIntervals, holdersAt } from "./checkers/split-ip.ts";
export { doubleVmIntervals } from "./checkers/double-vm.ts";
export { checkHealRecovery } from "./checkers/heal-recovery.ts";
export { checkReplicas, parsePos, containsPos, errant } from "./checkers/replicas.ts";
export { singleMaster, allAgree, ClusterViewSampler } from "./cluster-view.ts";
