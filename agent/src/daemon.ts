// The node daemon: corosync events -> HA core -> effects. All decisions live in core/; this file only
// translates events, executes actions and reports their results back as events.
import { performance } from "node:perf_hooks";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { coalesce } from "@ha/shared";
import { CorosyncClient, type ClusterEvent, type ClusterSnapshot } from "./corosync/index.ts";
import { createNodeCore, type NodeCore } from "./core/node-core.ts";
import type { CoreAction, CoreEvent, NodeConfig } from "./core/types.ts";
import { coreSettings, loadAgentConfig, type AgentConfig } from "./config.ts";
import { settingsProblems, resolveSettings, type Settings } from "./core/types.ts";
import { createLogger, type Logger } from "./log.ts";
import { ClusterIp } from "./effects/cluster-ip.ts";
import { Panel } from "./effects/panel.ts";
import { StorageHeartbeat } from "./effects/storage-heartbeat.ts";
import { TestIpProbe } from "./effects/test-ip.ts";
import { createWatchdog, type Watchdog } from "./effects/watchdog.ts";
import { ConfigSync } from "./effects/config-sync.ts";
import { StatusFile } from "./effects/status-file.ts";
import { decodeEnvelope, encodeEnvelope, type AdminRequest } from "./wire.ts";
import { AdminInbox } from "./effects/admin-inbox.ts";
import { refuseAddNode, refuseRemoveNode, nodesAfterAdd, nodesAfterRemove, type ClusterFacts } from "./node-admin.ts";
import { DbEffects } from "./effects/db/effects.ts";
import { NodeSync } from "./effects/db/node-sync.ts";
import { VmSync, clusterFactsOf } from "./effects/db/vm-sync.ts";
import { FailoverIncidents } from "./effects/failover-incident.ts";
import mysql from "mysql2/promise";
import { ClusterMetadata } from "./effects/cluster-metadata.ts";
import { createVmDriver, type VmDriver, type VmDriverConfig } from "./effects/vm/index.ts";
import { StartLimit } from "./effects/vm/start-limit.ts";
import { createFileSyncSchedule, type FileSyncSchedule } from "./effects/file-sync/index.ts";

const TSX_LOADER = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href;
fileURLToPath(TSX_LOADER); // fail early if the layout is unexpected

const now = () => performance.now();
/** How often the local database's eligibility is looked at, and how long a silent server is forgiven. */
const DB_HEALTH_MS = 500;
const DB_DOWN_GRACE_MS = 5000;
const NO_STORAGE = "no shared storage configured (storageDir)";

function nodesFrom(s: Pick<ClusterSnapshot, "nodes">): NodeConfig[] {
  return s.nodes.map((n) => ({ nodeid: n.nodeid, prio: n.prio, addr: n.ring0Addr, replication: n.replication, maintenance: n.maintenance }));
}

export class Daemon {
  private core: NodeCore | null = null;
  private localNodeId = 0;
  private readonly ip: ClusterIp | null;
  private panel: Panel | null = null; // made once the local node id is known
  private readonly heartbeat: StorageHeartbeat | null;
  private readonly configSync = new ConfigSync();
  private readonly status: StatusFile;
  private watchdog: Watchdog | null = null;
  private testIp: TestIpProbe | null = null;
  private db: DbEffects | null = null;
  private nodeSync: NodeSync | null = null;
  private vmSync: VmSync | null = null;
  /** Records each takeover by this node as a "failover" incident with its phases. */
  private failover: FailoverIncidents | null = null;
  private readonly vms: VmDriver | null;
  private readonly metadata: ClusterMetadata | null;
  /** VM starts on this node run at most `vm.maxParallelStarts` at once (stops never wait for it). */
  private readonly startLimit: StartLimit;
  private lastInventory = "";
  private configNodes: NodeConfig[] = [];
  private configVersion = 0;
  /** RAM each node offers VMs (published on the shared storage), merged into the core's node list. */
  private capacities = new Map<number, number>();
  private readonly inbox: AdminInbox;
  /** corosync `name` of nodes added with `corolistener node add --name`. */
  private readonly addedNames = new Map<number, string>();
  /** null until the first report: "no VM runs here" must be said once too (the core waits for it). */
  private lastLocalVms: string | null = null;
  /** Actions on one resource run strictly in order (the core relies on it): "ip", "panel", "vm:<name>". */
  private readonly queues = new Map<string, Promise<unknown>>();
  private tick: NodeJS.Timeout | null = null;
  /** How the lease was last derived (logged when it changes, e.g. a corosync.conf reload). */
  private leaseSource = "";
  /** The database eligibility last fed to the core ("ok" or the reason), and since when the server is down. */
  private dbHealthKey = "";
  private dbDownSince: number | null = null;
  private dbHealthTimer: NodeJS.Timeout | null = null;
  private savedTerm = 0;
  /** File replication: runs only while this node is master (docs/operations.md "File replication"). */
  private fileSync: FileSyncSchedule | null = null;

  constructor(
    private readonly config: AgentConfig,
    private readonly client: CorosyncClient,
    private readonly log: Logger,
  ) {
    this.ip = config.clusterIp ? new ClusterIp({ ip: config.clusterIp, prefix: config.clusterIpPrefix, device: config.clusterIpDevice }) : null;
    this.heartbeat = config.storageDir ? new StorageHeartbeat(config.storageDir) : null;
    this.status = new StatusFile(config.statusFile);
    this.inbox = new AdminInbox(config.statusFile);
    this.metadata = config.storageDir ? new ClusterMetadata(config.storageDir) : null;
    this.vms = config.vm ? createVmDriver({ driver: config.vm.driver, ...config.vm.options } as VmDriverConfig) : null;
    this.startLimit = new StartLimit(config.vm?.maxParallelStarts);
  }

  async start() {
    this.vms?.prepare?.().then(
      (line) => this.log.info(line),
      (err: Error) => this.log.error({ err: err.message }, "VM driver: preparing for starts failed"),
    );
    this.client.on("event", (e: ClusterEvent) => this.onCorosync(e));
    await this.client.start();
  }

  private onCorosync(e: ClusterEvent) {
    if (e.type === "connected" && !this.core) this.createCore(e.localNodeId);
    if (!this.core) return;
    switch (e.type) {
      case "disconnected":
        // Without corosync this node cannot know it is in the majority: treat as quorum lost.
        this.log.warn({ reason: e.reason }, "lost corosync");
        this.feed({ type: "quorum", now: now(), quorate: false, members: [] });
        this.feed({ type: "cpg-membership", now: now(), members: [] });
        return;
      case "quorum":
        return this.feed({ type: "quorum", now: now(), quorate: e.quorate, members: e.members });
      case "cpg-membership":
        return this.feed({ type: "cpg-membership", now: now(), members: [...new Set(e.members.map((m) => m.nodeid))].sort((a, b) => a - b) });
      case "config":
        this.configNodes = nodesFrom(e);
        this.configVersion = Number(e.configVersion);
        this.db?.nodesChanged(); // a replication flag switched in the panel starts/stops the local replica
        return this.feedConfig();
      case "cpg-message":
        return this.onMessage(e.nodeid, e.data);
    }
  }

  private createCore(localNodeId: number) {
    // With corosync's timing known, the whole ha section can be checked (the lease follows the
    // token). Settings that do not hold together would void the failover proofs: refuse to run.
    const timing = this.client.totemTiming();
    const known = timing.tokenMs !== undefined || this.config.ha.leaseMs !== undefined; // else: checked when the config was read
    const problems = known ? settingsProblems(resolveSettings(coreSettings(this.config.ha, timing).settings)) : [];
    if (problems.length) {
      this.log.fatal({ problems }, "HA settings do not hold together with corosync's timing: fix the ha section of the agent config; not starting");
      process.stderr.write(`corolistener: ha settings do not hold together: ${problems.join("; ")}\n`);
      void this.stop("invalid HA settings").finally(() => process.exit(2));
      return;
    }
    this.localNodeId = localNodeId;
    const c = this.config;
    this.panel = new Panel({ ...c, nodeid: localNodeId, host: c.clusterIp ?? "0.0.0.0", port: c.panelPort, tsxLoader: TSX_LOADER, log: this.log, db: c.panelDb,
      nodeAddr: () => nodesFrom(this.client.snapshot()).find((n) => n.nodeid === localNodeId)?.addr });
    // Before the core's first step (see CoreOptions.leftoversReleased).
    this.ip?.releaseLeftoverSync();
    rmSync(c.serviceLockFile, { force: true }); // an earlier run's panel exited with its agent (IPC)
    // The standby panel loads later: at cluster start every node is busy and the first steps count.
    setTimeout(() => this.panel?.prepare(), 3000).unref();
    if (c.database) {
      this.db = new DbEffects({
        self: localNodeId,
        config: c.database,
        peers: () => {
          const snap = this.client.snapshot();
          return nodesFrom(snap).map((n) => ({ nodeid: n.nodeid, host: n.addr ?? "", replication: n.replication ?? true, member: snap.members.includes(n.nodeid) }));
        },
        log: (level, msg, extra) => this.log[level](extra ?? {}, msg),
      });
      this.db.startWatch(); // every node's DB state for `corolistener -l`; disk guard and replica incidents
      const d = c.database;
      /** The agent's own connection to the local server (node sync, VM sync, failover incidents). */
      const localDb = () => mysql.createConnection({ socketPath: d.socketPath, user: d.adminUser, password: d.adminPassword, connectTimeout: 2000 });
      this.nodeSync = new NodeSync(localDb, d.database);
      if (this.metadata) this.vmSync = new VmSync(localDb, d.database, this.metadata);
      this.failover = new FailoverIncidents({
        self: localNodeId,
        connect: localDb,
        database: d.database,
        log: (level, msg, extra) => this.log[level](extra ?? {}, msg),
      });
    }
    this.fileSync = createFileSyncSchedule(c, localNodeId, () => nodesFrom(this.client.snapshot()), this.log);
    this.core = createNodeCore(localNodeId, this.haSettings(), { incarnation: Date.now(), leftoversReleased: this.ip !== null, initialTerm: this.readTerm() });
    if (this.db) this.dbHealthTimer = setInterval(() => this.checkDbHealth(), DB_HEALTH_MS);
    if (c.testIp) {
      const onError = (message: string) => this.log.warn({ testIp: c.testIp }, message);
      this.testIp = new TestIpProbe(c.testIp, { intervalMs: resolveSettings(this.haSettings()).testIpProbeMs, onError }).start();
    }
    this.watchdog = createWatchdog(TSX_LOADER, c.clusterIp ? { cidr: `${c.clusterIp}/${c.clusterIpPrefix}`, device: c.clusterIpDevice } : undefined);
    this.log.info({ localNodeId }, "HA core started");
    this.tick = setInterval(() => this.feed({ type: "tick", now: now() }), 100);
    void this.pollVms();
  }

  /** The term an earlier run of this agent reached (0: none): terms, and so DB epochs, keep growing. */
  private readTerm(): number {
    try {
      return Number(JSON.parse(readFileSync(this.termFile, "utf8")).term) || 0;
    } catch {
      return 0;
    }
  }

  private get termFile() {
    return join(dirname(this.config.statusFile), "term.json");
  }

  /** Persists the term when it grows (before the actions of that step run: a promotion uses it). */
  private saveTerm(term: number) {
    if (term <= this.savedTerm) return;
    this.savedTerm = term;
    try {
      // /run: kept across agent restarts (the common case), not reboots, where the epochs a
      // promotion sees keep growing anyway (db-role.ts nextEpoch).
      writeFileSync(`${this.termFile}.tmp`, JSON.stringify({ term }));
      renameSync(`${this.termFile}.tmp`, this.termFile);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "cannot persist the term");
    }
  }

  /**
   * Can the local database become primary? Fed to the core when that changes (mastership follows
   * the database). A server that does not answer counts only after DB_DOWN_GRACE_MS: a mariadbd
   * that restarts in a moment is promoted again in place rather than moving the master.
   */
  private checkDbHealth() {
    if (!this.db) return;
    let { eligible, reason } = this.db.localProblem();
    const me = this.db.health()?.nodes.find((n) => n.nodeid === this.localNodeId);
    if (me && !me.reachable) {
      this.dbDownSince ??= now();
      if (now() - this.dbDownSince < DB_DOWN_GRACE_MS) eligible = true;
    } else this.dbDownSince = null;
    const blocker = this.db.promotionBlocker();
    if (eligible && blocker) [eligible, reason] = [false, `its last promotion failed: ${blocker}`];
    const key = eligible ? "ok" : reason;
    if (key === this.dbHealthKey) return;
    this.dbHealthKey = key;
    this.log.info({ eligible, reason }, eligible ? "database can be primary here" : `database cannot be primary here: ${reason}`);
    this.feed({ type: "db-health", now: now(), eligible, reason: eligible ? "" : reason });
  }

  /** corosync.conf's nodes with the RAM each offers: what the core compares desired node lists with. */
  private coreNodes(): NodeConfig[] {
    return this.configNodes.map((n) => (this.capacities.has(n.nodeid) ? { ...n, ramMb: this.capacities.get(n.nodeid) } : n));
  }

  private feedConfig() {
    this.feed({ type: "config", now: now(), version: this.configVersion, nodes: this.coreNodes(), settings: this.haSettings() });
  }

  /** The core's settings: the `ha` config with the lease from corosync's current timing (config.ts coreSettings). */
  private haSettings(): Partial<Settings> {
    const { settings, lease } = coreSettings(this.config.ha, this.client.totemTiming());
    if (lease !== this.leaseSource) {
      this.leaseSource = lease;
      this.log.info({ leaseMs: settings.leaseMs }, `lease: ${lease}`);
      const problems = settingsProblems(resolveSettings(settings));
      if (problems.length) this.log.error({ problems }, "HA settings do not hold together; fix the ha section of the agent config");
    }
    return settings;
  }

  private async refreshCapacities() {
    if (!this.metadata) return;
    const caps = new Map([...(await this.metadata.readCapacities())].map(([id, c]) => [id, c.ramMb]));
    const key = (m: Map<number, number>) => JSON.stringify([...m].sort((a, b) => a[0] - b[0]));
    if (key(caps) === key(this.capacities)) return;
    this.capacities = caps;
    if (this.configNodes.length) this.feedConfig();
  }

  /** Every second: VM definitions and owners from the shared storage, and what runs here. */
  private async pollVms() {
    // First: until the core knows what runs here it must assume VMs, and so a heartbeat deadline.
    await this.reportLocalVms();
    if (this.vms && this.metadata) {
      const r = await this.vms.resources().catch(() => null);
      if (r) await this.metadata.writeCapacity({ nodeid: this.localNodeId, ramMb: r.ramMb, vcpus: r.vcpus }).catch(() => undefined);
    }
    while (this.tick) {
      await this.reportLocalVms();
      await this.refreshCapacities().catch(() => undefined);
      try {
        const inv = this.metadata ? await this.metadata.read() : { vms: [], owners: [], invalid: [] };
        const key = JSON.stringify([inv.vms, inv.owners]);
        if (key !== this.lastInventory) {
          this.lastInventory = key;
          if (inv.invalid.length) this.log.warn({ invalid: inv.invalid }, "ignored malformed cluster metadata files");
          this.feed({ type: "vm-inventory", now: now(), vms: inv.vms, owners: inv.owners });
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "cannot read VM inventory from the shared storage");
      }
      for (const request of await this.inbox.take()) this.onAdminRequest(request);
      await this.syncNodesWithDb();
      await this.syncVmsWithDb();
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** On the master: VM rows in the DB <-> VM records on the shared storage (panel HA/priority edits, VMs created in the panel). */
  private async syncVmsWithDb() {
    if (!this.vmSync || !this.core) return;
    const view = this.core.view();
    if (!view.isMaster) return this.vmSync.reset();
    try {
      // A requested node is judged by the master's current view (nodes, maintenance, RAM, owners).
      const { written, defined, failed, warnings } = await this.vmSync.pass(clusterFactsOf(view));
      if (written.length) this.log.info({ vms: written }, "VM HA settings changed in the panel: written to the shared storage");
      for (const d of defined) {
        if (d.owner !== null) this.log.info({ vm: d.name, node: d.owner }, `VM created in the panel: defined on the shared storage, owned by the requested n${d.owner} (epoch 1)`);
        else this.log.info({ vm: d.name, note: d.note ?? undefined }, `VM created in the panel: defined on the shared storage; ${d.note ?? "placement chooses its node"}`);
      }
      for (const f of failed) this.log.warn({ vm: f.name, reason: f.reason }, "a VM created in the panel cannot be defined");
      for (const w of warnings) this.log.warn({}, w);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "VM sync with the database skipped");
    }
  }

  /** On the master: node rows in the DB <-> corosync.conf (panel edits become desired state). */
  private async syncNodesWithDb() {
    if (!this.nodeSync || !this.core) return;
    const view = this.core.view();
    if (!view.isMaster) return this.nodeSync.reset();
    try {
      const desired = await this.nodeSync.pass(this.coreNodes(), view);
      if (desired) {
        this.log.info({ desired }, "node settings changed in the panel");
        this.feed({ type: "desired-config", now: now(), nodes: desired });
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "node sync with the database skipped");
    }
  }

  /**
   * Feeds the VMs running here when that changed. Coalesced: after a failover dozens of starts
   * end at nearly the same time, and each would list every VM on the node.
   */
  private readonly reportLocalVms = coalesce(async () => {
    const running = this.vms ? (await this.vms.list().catch(() => [])).filter((v) => v.state === "running").map((v) => v.name).sort() : [];
    const key = running.join(",");
    if (key === this.lastLocalVms) return;
    this.lastLocalVms = key;
    this.feed({ type: "local-vms", now: now(), running });
  });

  /** `queuedAt`: when the StartVm came (the time until here is the wait for a start slot). */
  private async startVm(vm: string, epoch: number, queuedAt: number) {
    if (!this.vms || !this.metadata) throw new Error(`vm ${vm}: this node has no VM driver or shared storage`);
    const t = [now()];
    await this.metadata.assertOwned(vm, this.localNodeId, epoch);
    t.push(now());
    const def = await this.metadata.definition(vm);
    if (!def) throw new Error(`vm ${vm}: no valid definition on the shared storage`);
    await this.vms.define(def);
    t.push(now());
    await this.vms.start(vm);
    t.push(now());
    const ms = (a: number, b: number) => Math.round(b - a);
    this.log.info(
      { vm, slotWaitMs: ms(queuedAt, t[0]!), ownerCheckMs: ms(t[0]!, t[1]!), defineMs: ms(t[1]!, t[2]!), bootMs: ms(t[2]!, t[3]!) },
      `${vm} started (epoch ${epoch})`,
    );
  }

  private async stopVm(vm: string, force: boolean) {
    if (!this.vms) return;
    await this.vms.stop(vm, { timeoutMs: this.config.vm?.stopTimeoutMs ?? 3000, force });
    await this.reportLocalVms();
  }

  /** A request from `corolistener elect|set-node` on this node. */
  private onAdminRequest(request: AdminRequest) {
    this.log.info({ request }, "admin request");
    // An election is started by the core itself; node changes go to whoever is master, in order.
    if (request.kind === "elect") return this.feed({ type: "admin", now: now(), request: { kind: "elect" } });
    void this.client.send(encodeEnvelope({ ch: "admin", request })).catch((err: Error) => this.log.error({ err: err.message }, "cannot forward admin request"));
  }

  /** Every node gets node changes; only the master turns them into desired state. */
  private onAdminMessage(from: number, request: AdminRequest) {
    if (!this.core?.view().isMaster) return;
    if (request.kind === "add-node" || request.kind === "remove-node") return this.onMembershipRequest(from, request);
    if (request.kind !== "set-node") return;
    if (!this.configNodes.some((n) => n.nodeid === request.nodeid)) {
      return this.log.error({ from, request }, `admin request refused: n${request.nodeid} is not in the node list`);
    }
    const nodes = this.coreNodes().map((n) =>
      n.nodeid === request.nodeid ? { ...n, prio: request.prio ?? n.prio, replication: request.replication ?? n.replication, maintenance: request.maintenance ?? n.maintenance } : n,
    );
    this.feed({ type: "desired-config", now: now(), nodes });
  }

  /** `corolistener node add|remove` on the master: checked again here, since only the master decides. */
  private onMembershipRequest(from: number, request: Extract<AdminRequest, { kind: "add-node" | "remove-node" }>) {
    const view = this.core!.view();
    const facts: ClusterFacts = {
      nodes: this.client.snapshot().nodes.map((n) => ({ nodeid: n.nodeid, addr: n.ring0Addr, name: n.name })),
      quorate: view.quorum.quorate === true,
      members: view.quorum.members,
      master: view.master,
      owners: view.vms.map((v) => ({ vm: v.vm, node: v.owner })),
    };
    const refused = request.kind === "add-node" ? refuseAddNode(facts, request) : refuseRemoveNode(facts, request.nodeid);
    if (refused) return this.log.error({ from, request }, `admin request refused: ${refused}`);
    if (request.kind === "add-node" && request.name) this.addedNames.set(request.nodeid, request.name);
    // From coreNodes (with ramMb): otherwise the core never sees the distributed list as done and distributes again.
    const nodes = request.kind === "add-node" ? nodesAfterAdd(this.coreNodes(), request) : nodesAfterRemove(this.coreNodes(), request.nodeid);
    this.log.info({ from, request }, `${request.kind}: n${request.nodeid} accepted, distributing the new node list`);
    this.feed({ type: "desired-config", now: now(), nodes });
  }

  private onMessage(from: number, data: Buffer) {
    const env = decodeEnvelope(data);
    if (!env) return this.log.warn({ from }, "ignored an undecodable CPG message");
    if (env.ch === "admin") return this.onAdminMessage(from, env.request);
    if (env.ch === "core") return this.feed({ type: "cpg-message", now: now(), from, msg: env.msg });
    if (env.ch === "conf-ack") return this.configSync.ack(env.version, from);
    if (env.ch === "conf") {
      this.configSync.install(env.text, this.localNodeId).then(
        (version) => {
          this.log.info({ version, from }, "installed distributed corosync.conf");
          void this.client.send(encodeEnvelope({ ch: "conf-ack", version })).catch(() => undefined);
        },
        (err: Error) => this.log.error({ from, err: err.message }, "distributed corosync.conf refused"),
      );
    }
  }

  /** One step of the core: log its decisions, pet the watchdog, execute its actions. */
  feed(event: CoreEvent) {
    if (!this.core) return;
    const r = this.core.step(event);
    for (const d of r.decisions) this.log.info({ kind: d.kind }, d.reason);
    this.saveTerm(this.core.role().term);
    this.watchdog?.pet(r.watchdogDeadline - now());
    // Before the actions run: some of them feed their results back synchronously.
    this.failover?.observe({ event, actions: r.actions, decisions: r.decisions, view: this.core.view(), wall: Date.now() });
    for (const a of r.actions) this.execute(a);
    const after = this.core.view(); // again: an action may have fed a result back meanwhile
    this.status.update(after, this.db?.health() ?? undefined);
    this.fileSync?.setMaster(after.isMaster);
  }

  private result(action: CoreAction, p: Promise<unknown>) {
    const t0 = now();
    p.then(
      () => {
        this.log.info({ action: action.type, ms: Math.round(now() - t0) }, `${action.type} done`);
        this.feed({ type: "action-result", now: now(), action, ok: true });
      },
      (err: Error) => {
        this.log.error({ action: action.type, err: err.message }, `action failed: ${action.type}`);
        this.feed({ type: "action-result", now: now(), action, ok: false, error: err.message });
      },
    );
  }

  private inOrder(resource: string, fn: () => Promise<unknown>) {
    const p = (this.queues.get(resource) ?? Promise.resolve()).then(fn);
    const settled = p.catch(() => undefined);
    this.queues.set(resource, settled);
    void settled.then(() => this.queues.get(resource) === settled && this.queues.delete(resource));
    return p;
  }

  private execute(a: CoreAction) {
    if (a.type !== "SendCpg" && a.type !== "WriteHeartbeat" && a.type !== "ReadHeartbeats" && a.type !== "ProbeTestIp") {
      this.log.info({ action: a }, `${a.type}: ${a.reason}`);
    }
    switch (a.type) {
      case "AssignClusterIp":
        return this.result(a, this.inOrder("ip", () => this.ip?.assign() ?? Promise.resolve()));
      case "ReleaseClusterIp":
        return this.result(a, this.inOrder("ip", () => this.ip?.release() ?? Promise.resolve()));
      case "StartPanel": {
        // The panel binds the cluster IP: it starts once the IP actions before it are done. It has
        // a queue of its own so that a slow panel never holds up a release of the IP.
        const ipBefore = (this.queues.get("ip") ?? Promise.resolve()).catch(() => undefined);
        return this.result(a, this.inOrder("panel", () => ipBefore.then(() => this.panel!.start(a.kind))));
      }
      case "StopPanel":
        return this.result(a, this.inOrder("panel", () => this.panel!.stop()));
      case "SendCpg":
        return void this.client.send(encodeEnvelope({ ch: "core", msg: a.msg })).catch((err: Error) => this.log.debug({ err: err.message }, "CPG send failed"));
      case "WriteHeartbeat": {
        const startedAt = now();
        // Without shared storage the node cannot prove it is alive or fenced: that must count as failure.
        const write = this.heartbeat ? this.heartbeat.write(a.heartbeat) : Promise.reject(new Error(NO_STORAGE));
        return void write.then(
          () => this.feed({ type: "storage-write", now: now(), ok: true, seq: a.heartbeat.seq, startedAt }),
          (err: Error) => this.feed({ type: "storage-write", now: now(), ok: false, seq: a.heartbeat.seq, startedAt, error: err.message }),
        );
      }
      case "ReadHeartbeats": {
        const startedAt = now();
        if (!this.heartbeat) return this.feed({ type: "storage-read", now: now(), ok: false, startedAt, heartbeats: [], error: NO_STORAGE });
        return void this.heartbeat.readAll().then(
          ({ heartbeats, invalid }) => {
            if (invalid.length) this.log.warn({ invalid }, "ignored malformed heartbeat files");
            this.feed({ type: "storage-read", now: now(), ok: true, startedAt, heartbeats });
          },
          (err: Error) => this.feed({ type: "storage-read", now: now(), ok: false, startedAt, heartbeats: [], error: err.message }),
        );
      }
      case "ProbeTestIp":
        // The prober pings all the time; the answer is what it saw. Fed later, not inside this step.
        return void setImmediate(() => this.feed({ type: "test-ip", now: now(), reachable: this.testIp?.reachable() ?? false }));
      case "Fence":
        this.log.error({ reason: a.reason }, "fencing: resetting this node");
        return this.watchdog?.resetNow(a.reason);
      case "DistributeConfig":
        return this.result(a, this.distribute(a.version, a.nodes));
      case "DemoteDatabase":
        return this.result(a, this.db?.demote(a.reason) ?? Promise.resolve());
      case "PromoteDatabase":
        return this.result(
          a,
          this.db?.promote(a.reason, a.term).then((r) => this.failover?.tracker.dbWritable(Date.now() - (r.totalMs - r.writableAfterMs))) ?? Promise.resolve(),
        );
      case "FollowDatabase":
        return this.result(a, this.db?.follow(a.master, a.reason) ?? Promise.resolve());
      case "StartVm":
        // The listing after a start runs outside the start slot: it is not part of starting.
        return this.result(
          a,
          this.inOrder(`vm:${a.vm}`, () => {
            const queuedAt = now();
            return this.startLimit.run(() => this.startVm(a.vm, a.epoch, queuedAt)).then(() => this.reportLocalVms());
          }),
        );
      case "StopVm":
        return this.result(a, this.inOrder(`vm:${a.vm}`, () => this.stopVm(a.vm, a.force ?? false)));
      case "SetOwnership":
        return this.result(a, this.metadata?.setOwner({ vm: a.vm, node: a.node, epoch: a.epoch }) ?? Promise.reject(new Error("no shared storage configured")));
      case "SetNodeStatus":
        return;
    }
  }

  private async distribute(version: number, nodes: NodeConfig[]) {
    const text = await this.configSync.prepare(version, nodes, this.addedNames);
    // A node being removed refuses a file without itself: do not wait for its acknowledgement.
    const members = this.client.snapshot().cpgMembers.map((m) => m.nodeid).filter((id) => nodes.some((n) => n.nodeid === id));
    this.configSync.expectAcks(version, [...new Set(members)], (missing) => {
      if (missing.length) this.log.warn({ version, missing }, "nodes did not acknowledge the new corosync.conf");
      this.configSync.reloadCorosync().then(
        () => this.log.info({ version }, "corosync reloaded the new corosync.conf"),
        (err: Error) => this.log.error({ version, err: err.message }, "corosync reload failed"),
      );
    });
    await this.client.send(encodeEnvelope({ ch: "conf", version, text }));
  }

  async stop(signal: string) {
    this.log.info({ signal }, "stopping: releasing the cluster IP and the panel");
    if (this.tick) clearInterval(this.tick);
    if (this.dbHealthTimer) clearInterval(this.dbHealthTimer);
    this.testIp?.stop();
    this.fileSync?.stop();
    await this.panel?.stop().catch(() => undefined);
    await this.ip?.release().catch(() => undefined);
    this.watchdog?.disarm();
    await this.db?.stop();
    await this.client.stop();
    this.status.remove();
  }
}

export async function runDaemon(configPath: string | undefined): Promise<void> {
  const config = loadAgentConfig(configPath);
  const log = createLogger(config.logFile);
  const client = new CorosyncClient({ cpgGroup: config.cpgGroup, logger: log });
  const daemon = new Daemon(config, client, log);
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => void daemon.stop(sig).finally(() => process.exit(0)));
  }
  log.info({ config }, "starting");
  await daemon.start();
}
