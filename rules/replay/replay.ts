/**
 * Replay: the real engine over recorded events in virtual time. Time is the
 * events' `ts`: before each event, the engine is ticked at every `tickMs`
 * boundary passed since the previous one, so sustained/absent/clear logic
 * fires when it would have live. Output depends only on the inputs: no wall
 * clock, no random ids.
 */
import { ManualClock } from '../../core/clock.js';
import type { ClusterView } from '../../core/cluster.js';
import type { NodewardenConfig } from '../../core/config.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import type { EventEnvelope } from '../../core/envelope.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import type { Remediator } from '../../remediations/ports.js';
import type { RuleToggles } from '../toggles/port.js';
import { createRuleEngine } from '../engine/engine.js';
import type { RuleSet } from '../language/types.js';
import { MemoryStateStore } from '../store/memory-store.js';
import { MemoryDeduper } from '../service/dedupe.js';
import { eventTimeBounds, eventTimeProblem } from '../../core/event-time.js';
import { parseDuration } from '../../core/duration.js';
import type { StateStore } from '../store/state-store.js';

export interface ReplayOptions {
  events: AsyncIterable<EventEnvelope> | Iterable<EventEnvelope>;
  rules: RuleSet;
  cluster: ClusterView;
  /** Submits decisions; held faults (ADR 0034) go to it too when it takes them (the repair ladder). */
  remediator: Pick<Remediator, 'submit' | 'heldFaults' | 'bindRuleEpisodes'>;
  config: NodewardenConfig;
  /** Rule ids switched off for this run (like a runtime toggle). */
  disabled?: readonly string[];
  /** Hand the remediator empty submits at every tick too (the repair ladder's Job watch and quiet periods run on them). */
  tickRemediator?: boolean;
  /** Virtual tick period (default 1s). */
  tickMs?: number;
  /** Keep ticking after the last event up to this time (ms), e.g. a test's eval_time. */
  until?: number;
  store?: StateStore;
  logger?: Logger;
  /** Called with each batch of decisions before they go to the remediator (tests). */
  onDecisions?: (d: Decision[]) => void;
  /** The virtual clock, when the remediator must share it (guards, simulated cluster). */
  clock?: ManualClock;
  /** Called once at the end (virtual time = the last tick): e.g. the remediator's flush of held denial pages. */
  finish?: () => Promise<LedgerRecord[]>;
  /**
   * An event set aside, with the reason: its time is out of bounds
   * (config `engine.eventTime`, the live engine's dead letters), or its `id`
   * was seen within `engine.dedupeWindow` (the live engine's dedupe).
   */
  onRejected?: (e: EventEnvelope, reason: string, kind: 'event-time' | 'duplicate') => void;
  /** The read time of the future bound (default the wall clock: no recorded event lies in the future). */
  readNow?: () => number;
}

const MAX_BATCH = 1000;
/** A quiet gap of days must not cost millions of ticks: past this many, ticks get coarser. */
const MAX_TICKS_PER_GAP = 20_000;

export function disabledToggles(disabled: readonly string[]): RuleToggles {
  const off = new Set(disabled);
  return {
    isEnabled: (rule, fileEnabled) => fileEnabled && !off.has(rule),
    list: () => [],
    set: () => Promise.reject(new Error('toggles are read-only in replay')),
    clear: () => Promise.reject(new Error('toggles are read-only in replay')),
  };
}

export async function* replay(opts: ReplayOptions): AsyncGenerator<LedgerRecord> {
  const clock = opts.clock ?? new ManualClock(0);
  const store = opts.store ?? new MemoryStateStore();
  const engine = createRuleEngine({
    rules: opts.rules,
    store,
    cluster: opts.cluster,
    toggles: disabledToggles(opts.disabled ?? []),
    clock,
    logger: opts.logger ?? silentLogger,
    config: opts.config,
  });
  // what the repair ladder returns to service ends the engine's isolating episodes (ADR 0034), as in the engine service
  opts.remediator.bindRuleEpisodes?.({ release: (eps) => engine.release(eps) });
  const tickMs = opts.tickMs ?? 1000;
  const bounds = eventTimeBounds(opts.config);
  const readNow = opts.readNow ?? Date.now;
  // The live engine's dedupe, on virtual time: an id is remembered for engine.dedupeWindow.
  const deduper = new MemoryDeduper(clock, { windowMs: parseDuration(opts.config.engine.dedupeWindow), claimTtlMs: 0 });
  let nextTick = -1;
  let batch: EventEnvelope[] = [];

  async function submit(decisions: Decision[], tick = false): Promise<LedgerRecord[]> {
    if (decisions.length === 0 && !(tick && opts.tickRemediator === true)) return [];
    opts.onDecisions?.(decisions);
    // the ledger lines are the records; a decision in flight elsewhere (none in one process) was never a ledger line
    return (await opts.remediator.submit(decisions)).records;
  }
  async function flush(): Promise<LedgerRecord[]> {
    if (batch.length === 0) return [];
    const b = batch;
    batch = [];
    const out = await engine.evaluate(b);
    const rs = await submit(out.decisions);
    if (out.heldFaults.length === 0 || !opts.remediator.heldFaults) return rs;
    return [...rs, ...(await opts.remediator.heldFaults(out.heldFaults)).records];
  }
  /** Ticks every boundary ≤ t (or < t: events at a boundary go before its tick, so time-driven firings see them). */
  async function* ticksUpTo(t: number, inclusive: boolean): AsyncGenerator<LedgerRecord> {
    const due = (): boolean => (inclusive ? nextTick <= t : nextTick < t);
    if (nextTick < 0 || !due()) return;
    const n = Math.floor((t - nextTick) / tickMs) + 1;
    const step = n > MAX_TICKS_PER_GAP ? Math.ceil(n / MAX_TICKS_PER_GAP) * tickMs : tickMs;
    for (; due(); nextTick += step) {
      clock.set(nextTick);
      yield* await submit(await engine.tick(nextTick), true);
    }
  }

  for await (const e of opts.events) {
    const t = Date.parse(e.ts);
    // Before the first accepted event there is no virtual time: only the future bound applies.
    const late = eventTimeProblem(t, bounds, { future: readNow(), past: nextTick < 0 ? t : clock.now() });
    if (late) {
      opts.onRejected?.(e, late, 'event-time');
      continue;
    }
    if (nextTick < 0) nextTick = Math.ceil(t / tickMs) * tickMs;
    if (nextTick < t) {
      yield* await flush();
      yield* ticksUpTo(t, false);
    }
    if (t > clock.now()) clock.set(t);
    const [claim] = await deduper.claim([e.id]);
    if (claim !== 'claimed') {
      opts.onRejected?.(e, `duplicate event id ${JSON.stringify(e.id)}`, 'duplicate');
      continue;
    }
    await deduper.confirm([e.id]);
    batch.push(e);
    if (batch.length >= MAX_BATCH) yield* await flush();
  }
  yield* await flush();
  if (opts.until !== undefined) {
    if (nextTick < 0) nextTick = Math.ceil(opts.until / tickMs) * tickMs;
    yield* ticksUpTo(opts.until, true);
  }
  if (opts.finish) yield* await opts.finish();
}
