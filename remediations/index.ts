/**
 * Remediations: everything the engine, the control API, replay and the demo
 * need to act through the blast-radius guard and to record every decision.
 */
import type { Clock } from '../core/clock.js';
import type { NodewardenConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import type { Registry } from 'prom-client';
import type { GuardOptions } from './guard/policy.js';
import { guardOptionsFromConfig } from './guard/policy.js';
import { createMemoryGuard } from './guard/memory-guard.js';
import type { MemoryGuardState } from './guard/memory-guard.js';
import { MemoryLedger } from './ledger/memory-ledger.js';
import type { LedgerWriter } from './ledger/store.js';
import { createPagerExecutor } from './pager/pager-executor.js';
import type { Pager } from './pager/pager.js';
import type { RecordingPager } from './pager/recording-pager.js';
import { createRecordingPager } from './pager/recording-pager.js';
import type { ControllableGuard, Remediator } from './ports.js';
import { createRemediator } from './remediator.js';
import type { SimulatedCluster } from './simulated/index.js';
import { MemoryDocStore } from './incidents/doc-store.js';
import type { DocStore } from './incidents/doc-store.js';
import { incidentPagingFromConfig } from './incidents/from-config.js';
import type { IncidentPaging } from './incidents/incident-paging.js';
import type { Silences } from './silences/silence.js';
import type { Approvals } from './approvals/approvals.js';
import type { XidCatalogue } from '../rules/xid/catalogue.js';
import { LadderDriver } from './ladder/driver.js';
import type { OutcomeMetrics } from './ladder/driver.js';
import { createHandoverExecutor, createRepairJobExecutor, createRepairJobWatch } from './ladder/job-executor.js';
import type { RepairJobsApi } from './ladder/job-executor.js';
import { ladderPolicyFromConfig, ladderView, withRepairLadder } from './ladder/wire.js';
import { SimulatedRepairJobs } from './simulated/simulated-jobs.js';
import { SIMULATED_DEVICE_TAINTS } from './device-isolation.js';

export type * from './ports.js';
export type { PageRequest, Pager } from './pager/pager.js';

export interface ReplayRemediationOptions {
  /** The simulated cluster (remediations/simulated): guard view and executors in one. */
  cluster: SimulatedCluster;
  config: NodewardenConfig;
  clock: Clock;
  dryRun?: boolean;
  /** Where records go besides the returned array (e.g. a JsonlLedgerSink on stdout). Default: memory only. */
  ledger?: LedgerWriter[];
  /** Bound of the memory ledger (`ReplayRemediation.ledger`, default 100,000 entries). */
  ledgerMaxEntries?: number;
  logger?: Logger;
  registry?: Registry;
  /** Guard option overrides (tests). */
  guard?: Partial<GuardOptions>;
  /** Denial grouping window in virtual time (default 30 s). */
  denialWindowMs?: number;
  /** Pagers that deliver besides the recording one (the demo's opt-in real PagerDuty/Slack). Default: none. */
  pagers?: readonly Pager[];
  /** The Xid catalogue of the loaded rules: where the repair ladder starts (config `repair.enabled`). */
  catalogue?: XidCatalogue | undefined;
  /** Repair Jobs (default: simulated ones that succeed after 2 minutes of the clock). */
  repairJobs?: RepairJobsApi;
  /** Outcome figures of the ladder and of cordons. */
  outcomeMetrics?: OutcomeMetrics;
  /** GPU taints are carried out on the simulated nodes (default false: every GPU taint cordons the node). */
  deviceTaints?: boolean;
}

export interface ReplayRemediation {
  remediator: Remediator;
  guard: ControllableGuard & { readonly state: MemoryGuardState };
  /** Every page and resolve, recorded (no HTTP). */
  pager: RecordingPager;
  /** The ledger store: every record of the remediator (and what else is appended to it: the demo's operator audits). */
  ledger: MemoryLedger;
  /** Incidents (absent when `incidents.enabled` is false), silences and approvals, in memory. */
  incidents: IncidentPaging | undefined;
  silences: Silences;
  approvals: Approvals;
  store: DocStore;
  /** The repair ladder (acting when `repair.enabled`, outcome figures only otherwise). */
  ladder: LadderDriver;
  repairJobs: RepairJobsApi | undefined;
}

/**
 * Replay and demo wiring: the memory guard over the simulated cluster (so the
 * guard sees its own cordons), the simulated cluster's executors, and a
 * recording pager. Virtual time: no timers; call `remediator.flush()` at the
 * end to send the denial pages still held in their grouping window.
 */
export function createReplayRemediation(o: ReplayRemediationOptions): ReplayRemediation {
  const logger = o.logger ?? silentLogger;
  const dryRun = o.dryRun ?? o.config.guard.dryRun;
  const guard = createMemoryGuard({ view: o.cluster, options: guardOptionsFromConfig(o.config, o.guard), clock: o.clock });
  const pager = createRecordingPager('replay');
  const ledger = new MemoryLedger(o.ledgerMaxEntries, { now: () => o.clock.now() });
  const sim = o.cluster.executors;
  const store = new MemoryDocStore(o.clock);
  const { incidents, silences, approvals } = incidentPagingFromConfig(o.config, store, o.clock);
  const sinks = [ledger, ...(o.ledger ?? [])];
  const pages = createPagerExecutor({ pagers: [pager, ...(o.pagers ?? [])], logger });
  const ladderOn = o.config.repair.enabled && !dryRun;
  const repairJobs = ladderOn ? (o.repairJobs ?? new SimulatedRepairJobs(o.clock)) : undefined;
  const ladderExecutors = repairJobs ? [createRepairJobExecutor({ api: repairJobs, repair: o.config.repair }), createHandoverExecutor(pages)] : [];
  const inner = createRemediator({
    guard,
    executors: [sim.cordon, sim.device, pages, ...ladderExecutors],
    ...(o.deviceTaints === true ? { isolation: SIMULATED_DEVICE_TAINTS } : {}),
    ledger: sinks,
    clock: o.clock,
    logger,
    dryRun,
    autoFlush: false,
    ...(o.registry ? { registry: o.registry } : {}),
    ...(o.denialWindowMs === undefined ? {} : { denialWindowMs: o.denialWindowMs }),
    ...(incidents ? { incidents } : {}),
    approvals,
  });
  // off, the driver still keeps the outcome figures of cordons (time to detect and isolate)
  const ladder = new LadderDriver({
    store,
    policy: { ...ladderPolicyFromConfig(o.config), act: ladderOn },
    submit: async (ds) => ladderView(await inner.submit(ds)),
    view: o.cluster,
    jobs: createRepairJobWatch(repairJobs ?? new SimulatedRepairJobs(o.clock)),
    clock: o.clock,
    logger,
    catalogue: o.catalogue,
    ledger: sinks,
    metrics: o.outcomeMetrics,
  });
  const remediator = withRepairLadder(inner, ladder, logger);
  return { remediator, guard, pager, ledger, incidents, silences, approvals, store, ladder, repairJobs };
}
