/**
 * One batch of consumed messages, from raw bytes to durable decisions,
 * independent of the Kafka client:
 *
 *   decode + validate → dead letters for the invalid ones
 *   drop repeats inside the batch, then claim ids (dedupe across redeliveries;
 *   ids another batch is still working on make this one retry later)
 *   evaluate the fresh events → decisions → remediator (guard, action, ledger);
 *   held faults (isolating rules matched again during their cooldown) → the
 *   remediator's repair ladder (ADR 0034)
 *   routed episode releases (ADR 0049: internal records on the node's
 *   partition) → the engine's store, in order with the events around them
 *   dead letters durable → confirm the claimed ids
 *
 * With a remediator that submits in two parts (`begin`, ADR 0050), a batch's
 * cordons are carried out in the serial queue, and the rest of its submit
 * (pages, ledger write, settles, the ledger-topic append) completes after the
 * batches before it, in batch order, while the next batch is evaluated.
 *
 * Only when `process` resolves may the caller commit the batch's offsets. If
 * anything fails, the claims are released and the error propagates, so the
 * batch is redelivered and evaluated again (at-least-once; decisions carry a
 * stable id, so the guard suppresses an action replayed after a crash).
 *
 * A batch also fails (retriably) when
 *  - a ledger write failed: the remediator settles nothing whose record is not
 *    durable, so the redelivery acts again (idempotently) and records it;
 *  - a decision is in flight on another replica, or on one that died between
 *    guard and settle (`RetryLaterError`): it must not be dropped, so the batch
 *    is redelivered after Kafka's back-off until the decision is done there
 *    (then suppressed here) or its lease lapsed (then taken over here).
 */
import type { Clock } from '../../core/clock.js';
import type { LedgerWriter } from '../../remediations/ledger/store.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import { decodeEnvelope } from '../../core/envelope.js';
import type { EnvelopeTime, EventEnvelope } from '../../core/envelope.js';
import { NodewardenError, PoisonInputError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Remediator, SubmitResult } from '../../remediations/ports.js';
import type { EngineServiceMetrics } from './metrics.js';
import type { RuleEngine } from '../engine/engine.js';
import type { DeadLetterRecord, DeadLetterSink, EventDeduper, RawMessage } from './ports.js';
import { SerialQueue } from './serial.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { EventTimeBounds } from '../../core/event-time.js';
import type { LocalStateKnowledge } from '../store/node-sustained-filter.js';
import type { PartitionOwnership } from '../store/partition-local-store.js';
import { eventTimeBounds, eventTimeProblem } from '../../core/event-time.js';
import { decodeReleaseRecord, RELEASE_RECORD } from './episode-release.js';
import type { ReleaseRecord } from './episode-release.js';

const DEFAULT_EVENT_TIME = eventTimeBounds(DEFAULT_CONFIG);

/** Some decisions of the batch are in flight elsewhere: redeliver the batch later. */
export class RetryLaterError extends NodewardenError {
  constructor(readonly decisionIds: string[]) {
    super('CONFLICT', `${decisionIds.length} decision(s) in flight elsewhere, batch to be redelivered: ${decisionIds.slice(0, 5).join(', ')}`, { retriable: true });
    this.name = 'RetryLaterError';
  }
}

export interface BatchProcessorOptions {
  engine: RuleEngine;
  /** The remediator port, of which the processor only submits (and hands on held faults, when it takes them). */
  remediator: Pick<Remediator, 'submit' | 'begin' | 'heldFaults' | 'bindRuleEpisodes'>;
  /** Extra ledger writer for the records, when the remediator does not write them itself. */
  ledger?: LedgerWriter;
  deduper: EventDeduper;
  deadLetters: DeadLetterSink;
  metrics: EngineServiceMetrics;
  clock: Clock;
  logger: Logger;
  /** Shared with the ticker so batches and ticks never interleave. */
  queue?: SerialQueue;
  /** Bounds of event time against the clock (config `engine.eventTime`; default the shipped 5m/7d). */
  eventTime?: EventTimeBounds;
  /**
   * Evaluation while the shared state store (Redis) is unreachable: the same
   * rules over this replica's own memory state and dedupe. Only its pages and
   * resolves are submitted (remediation fails closed: the guard cannot answer
   * either); the remediator sends them marked degraded. The batch still fails
   * and is redelivered once the store is back, so nothing is lost.
   */
  degraded?: { engine: RuleEngine; deduper: EventDeduper };
  /**
   * What this replica knows of its partitions' node-scoped state (ADR 0042):
   * told to forget it when a batch meets events another replica already
   * evaluated (a replica still working on a partition it lost wrote after us).
   */
  localState?: LocalStateKnowledge;
  /**
   * Partition-local state (ADR 0045): entered before each batch (its
   * partition, restored on first use) and each tick (every assigned partition).
   */
  partitions?: PartitionOwnership;
}

/** Decisions a degraded evaluation may submit: telling a human, never touching the cluster. */
const DEGRADED_ACTIONS = new Set(['page', 'resolve']);

export interface BatchResult {
  consumed: number;
  invalid: number;
  duplicates: number;
  processed: number;
  decisions: Decision[];
  records: LedgerRecord[];
  /** Latest event time (ms) among the valid events, or null: the partition's event-time watermark. */
  maxEventTs: number | null;
}

export class BatchProcessor {
  readonly queue: SerialQueue;
  /**
   * The completions of the batches whose cordons are carried out (ADR 0050): one after the other in batch
   * order, while the next batch is evaluated and its cordons run. A tick waits for them all.
   */
  private completing: Promise<unknown> = Promise.resolve();
  constructor(private readonly o: BatchProcessorOptions) {
    this.queue = o.queue ?? new SerialQueue();
    // a node the repair ladder returns ends the engine's isolating episodes (ADR 0034); the primary engine's store is the shared one
    const release = o.engine.release?.bind(o.engine);
    if (release) o.remediator.bindRuleEpisodes?.({ release });
  }

  async process(messages: readonly RawMessage[]): Promise<BatchResult> {
    const started = process.hrtime.bigint();
    const { metrics } = this.o;
    metrics.consumed.inc(messages.length);

    const valid: EventEnvelope[] = [];
    /** Each valid event's time (ms), parsed once by its validation. */
    const validMs: number[] = [];
    const time: EnvelopeTime = { ms: Number.NaN };
    // routed episode releases (ADR 0049), each after the valid events that precede it on the partition
    const releases: Array<{ r: ReleaseRecord; after: number }> = [];
    const dead: DeadLetterRecord[] = [];
    const now = this.o.clock.now();
    const nowIso = new Date(now).toISOString();
    const bounds = this.o.eventTime ?? DEFAULT_EVENT_TIME;
    for (const m of messages) {
      const source = `${m.topic}/${m.partition}@${m.offset}`;
      try {
        if (m.value === null || m.value.length === 0) throw new PoisonInputError('EVENT_INVALID', source, [{ path: '', message: 'empty message' }]);
        if (m.record !== undefined) {
          // an internal record (header-marked): validated as strictly as an event, never evaluated as one
          if (m.record !== RELEASE_RECORD) throw new PoisonInputError('EVENT_INVALID', source, [{ path: '', message: 'unknown internal record (header nodewarden-record)' }]);
          const r = decodeReleaseRecord(m.value, m.key, source);
          const late = eventTimeProblem(Date.parse(r.ts), bounds, { future: now, past: now });
          if (late) throw new PoisonInputError('EVENT_INVALID', source, [{ path: '/ts', message: late }]);
          releases.push({ r, after: valid.length });
          continue;
        }
        const e = decodeEnvelope(m.value, source, time);
        const late = eventTimeProblem(time.ms, bounds, { future: now, past: now });
        if (late) throw new PoisonInputError('EVENT_INVALID', source, [{ path: '/ts', message: late }]);
        valid.push(e);
        validMs.push(time.ms);
      } catch (err) {
        const problems = err instanceof PoisonInputError ? err.problems : [{ path: '', message: errorMessage(err) }];
        dead.push({
          ts: nowIso,
          reason: `invalid ${m.record !== undefined ? 'internal record' : 'event'}: ${problems.map((p) => `${p.path || '/'}: ${p.message}`).join('; ')}`,
          problems,
          original: m.value,
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          key: m.key,
        });
      }
    }

    // Repeats inside one batch never reach the store.
    const firstSeen = new Set<string>();
    const unique: EventEnvelope[] = [];
    const uniqueMs: number[] = [];
    let maxEventTs: number | null = null;
    for (let i = 0; i < valid.length; i++) {
      const e = valid[i] as EventEnvelope;
      if (firstSeen.has(e.id)) continue;
      firstSeen.add(e.id);
      const t = validMs[i] as number;
      unique.push(e);
      uniqueMs.push(t);
      if (Number.isFinite(t) && (maxEventTs === null || t > maxEventTs)) maxEventTs = t;
    }
    let duplicates = valid.length - unique.length;
    // a release record is deduplicated like an event (by its id, in the same set): a redelivery never applies it twice
    const uniqueReleases: typeof releases = [];
    for (const x of releases)
      if (!firstSeen.has(x.r.id)) {
        firstSeen.add(x.r.id);
        uniqueReleases.push(x);
      }
    duplicates += releases.length - uniqueReleases.length;

    // where a batch's time goes (debug log 'batch phases'), ms
    // (queued: when the batch's turn in the serial queue came, after the batches before it)
    // (begun: its cordons carried out, the rest of its submit to come after the batches before it, ADR 0050)
    const at = { claimed: 0, queued: 0, evaluated: 0, begun: 0, submitted: 0, appended: 0 };
    const msSince = (): number => Number(process.hrtime.bigint() - started) / 1e6;
    let claims: Awaited<ReturnType<EventDeduper['claim']>>;
    try {
      claims = await this.o.deduper.claim([...unique.map((e) => e.id), ...uniqueReleases.map(({ r }) => r.id)]);
      at.claimed = msSince();
    } catch (err) {
      metrics.batchFailures.inc();
      await this.evaluateDegraded(unique, err);
      throw err;
    }
    const fresh = unique.filter((_, i) => claims[i] === 'claimed');
    const freshMs = uniqueMs.filter((_, i) => claims[i] === 'claimed');
    const freshReleases = uniqueReleases.filter((_, i) => claims[unique.length + i] === 'claimed');
    const claimedIds = [...fresh.map((e) => e.id), ...freshReleases.map(({ r }) => r.id)];
    const pending = [...unique.map((e) => e.id), ...uniqueReleases.map(({ r }) => r.id)].filter((_, i) => claims[i] === 'pending');
    if (pending.length > 0) {
      // Another batch (a replica that lost this partition in a rebalance but is
      // still working on it) holds these ids: skipping them could lose them if it
      // fails. Nothing is evaluated; the batch comes back once that claim is done or lapsed.
      metrics.batchFailures.inc();
      await this.o.deduper.release(claimedIds).catch((e: unknown) => this.o.logger.warn({ err: errorMessage(e) }, 'could not release dedupe claims'));
      this.o.logger.info({ events: pending.length, first: pending[0] }, 'events claimed by another batch in progress: the batch will be redelivered');
      throw new NodewardenError('CONFLICT', `${pending.length} event(s) claimed by another batch in progress (first: ${pending[0] ?? ''})`, { retriable: true });
    }
    duplicates += unique.length - fresh.length + uniqueReleases.length - freshReleases.length;
    if (this.o.localState && fresh.length < unique.length) this.o.localState.forget('events of this batch were already evaluated (another replica, or a redelivery)');

    let decisions: Decision[] = [];
    let records: LedgerRecord[] = [];
    let storeDown: unknown;
    try {
      if (fresh.length > 0 || freshReleases.length > 0) {
        const first = await this.queue.run(() => this.withPartition(this.o.partitions ? partitionOf(messages) : null, async () => {
          at.queued = msSince();
          const ds: Decision[] = [];
          const rs: LedgerRecord[] = [];
          const later: string[] = [];
          const segs = segments(valid, fresh, freshMs, freshReleases);
          // in two parts (ADR 0050) only a batch of events alone: partition-local state and routed releases keep it whole
          const twoParts = !this.o.partitions && segs.length === 1 && segs[0]?.release === null;
          for (const seg of segs) {
            if (seg.events.length > 0) {
              const out = await this.evaluateSegment(seg.events, seg.times, at, msSince, (err) => {
                storeDown = err;
              }, twoParts);
              if (out.rest) {
                // the cordons are over; the rest of the submit (pages, ledger, settles) and the ledger-topic append
                // come after the batches before it, in batch order, while the next batch is evaluated
                at.begun = msSince();
                const rest = out.rest;
                const done = this.completing.then(async () => {
                  const submitted = await rest();
                  at.submitted = msSince();
                  if (this.o.ledger && submitted.records.length > 0) await this.o.ledger.append(submitted.records);
                  return submitted;
                });
                this.completing = done.catch(() => undefined);
                return { ds: out.decisions, done };
              }
              ds.push(...out.decisions);
              rs.push(...out.records);
              later.push(...out.retryLater);
            }
            if (seg.release) await this.applyRelease(seg.release);
          }
          if (this.o.ledger && rs.length > 0) await this.o.ledger.append(rs);
          at.appended = msSince();
          if (later.length > 0) {
            countRecords(metrics, rs);
            throw new RetryLaterError(later);
          }
          return { ds, done: Promise.resolve({ records: rs, retryLater: [] }) };
        }, (err) => {
          storeDown = err;
        }));
        const submitted = await first.done;
        at.appended = msSince();
        if (submitted.retryLater.length > 0) {
          countRecords(metrics, submitted.records);
          throw new RetryLaterError(submitted.retryLater.map((r) => r.decisionId));
        }
        [decisions, records] = [first.ds, submitted.records];
      }
      if (dead.length > 0) await this.o.deadLetters.send(dead);
      await this.o.deduper.confirm(claimedIds);
    } catch (err) {
      metrics.batchFailures.inc();
      if (err instanceof RetryLaterError) this.o.logger.info({ decisions: err.decisionIds }, 'decisions in flight elsewhere: the batch will be redelivered');
      await this.o.deduper.release(claimedIds).catch((e: unknown) => this.o.logger.warn({ err: errorMessage(e) }, 'could not release dedupe claims'));
      if (storeDown !== undefined) await this.evaluateDegraded(fresh, storeDown);
      throw err;
    }

    for (const d of dead) this.o.logger.warn({ topic: d.topic, partition: d.partition, offset: d.offset, reason: d.reason }, 'event dead-lettered');
    metrics.invalid.inc(dead.length);
    metrics.duplicate.inc(duplicates);
    metrics.processed.inc(fresh.length);
    countRecords(metrics, records);
    metrics.batchDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (decisions.length > 0) this.o.logger.debug({ events: messages.length, decisions: decisions.length, records: records.length, ...Object.fromEntries(Object.entries(at).map(([k, v]) => [k, Math.round(v)])), done: Math.round(msSince()) }, 'batch phases');
    return { consumed: messages.length, invalid: dead.length, duplicates, processed: fresh.length, decisions, records, maxEventTs };
  }

  /** One run of consecutive events: evaluate, submit the decisions, hand held faults to the ladder. */
  private async evaluateSegment(events: readonly EventEnvelope[], times: readonly number[], at: { evaluated: number; submitted: number }, msSince: () => number, onStoreError: (err: unknown) => void, twoParts = false): Promise<{ decisions: Decision[]; records: LedgerRecord[]; retryLater: string[]; rest?: () => Promise<SubmitResult> }> {
    const engine = this.o.engine;
    const { decisions: ds, heldFaults } = await (engine.evaluate ? engine.evaluate(events, times) : engine.process(events).then((d) => ({ decisions: d, heldFaults: [] }))).catch((err: unknown) => {
      onStoreError(err);
      throw err;
    });
    at.evaluated = msSince();
    const begin = twoParts ? this.o.remediator.begin?.bind(this.o.remediator) : undefined;
    // the cordons now, the rest to the caller (ADR 0050); held faults for the repair ladder keep the submit whole
    if (begin && ds.length > 0 && heldFaults.length === 0) return { decisions: ds, records: [], retryLater: [], rest: await begin(ds, { redeliverable: true }) };
    const submitted = ds.length > 0 ? await this.o.remediator.submit(ds, { redeliverable: true }) : nothing();
    at.submitted = msSince();
    // after the batch's own decisions: a fault held back by its rule's cooldown, for the repair ladder
    const held = heldFaults.length > 0 && this.o.remediator.heldFaults ? await this.o.remediator.heldFaults(heldFaults) : nothing();
    return { decisions: ds, records: [...submitted.records, ...held.records], retryLater: [...submitted.retryLater, ...held.retryLater].map((r) => r.decisionId) };
  }

  /** A routed release (ADR 0049) reached the owner of the node's partition: its episodes end here, in order with the node's events. */
  private async applyRelease(r: ReleaseRecord): Promise<void> {
    const engine = this.o.engine;
    if (!engine.applyRelease) {
      this.o.logger.warn({ node: r.node, id: r.id }, 'episode release record: this engine keeps no rule episodes; ignored');
      return;
    }
    const n = await engine.applyRelease(r.node, r.episodes);
    this.o.logger.info({ node: r.node, id: r.id, released: n, episodes: r.episodes.map((e) => `${e.rule} ${e.scope}`) }, 'routed episode release applied by the owner of the node\'s partition');
  }

  /**
   * The shared store failed: evaluate on this replica's memory state so pages
   * still go out (each event once per replica), then let the batch fail as it
   * would have. Never throws: the original error is what the caller sees.
   */
  private async evaluateDegraded(events: readonly EventEnvelope[], cause: unknown): Promise<void> {
    const dg = this.o.degraded;
    if (!dg || events.length === 0 || !isUnavailable(cause)) return;
    try {
      const claims = await dg.deduper.claim(events.map((e) => e.id));
      const fresh = events.filter((_, i) => claims[i] === 'claimed');
      if (fresh.length === 0) return;
      this.o.metrics.degraded.inc(fresh.length);
      const pages = await this.queue.run(async () => (await dg.engine.process(fresh)).filter((d) => DEGRADED_ACTIONS.has(d.action)));
      await dg.deduper.confirm(fresh.map((e) => e.id));
      this.o.logger.warn({ events: fresh.length, pages: pages.length, err: errorMessage(cause) }, 'state store unavailable: evaluated in degraded mode (pages only, no remediation)');
      if (pages.length === 0) return;
      const r = await this.o.remediator.submit(pages, { redeliverable: true, storeDown: true }).catch((err: unknown) => {
        // the ledger shares the outage; the pages themselves were sent
        this.o.logger.warn({ err: errorMessage(err) }, 'degraded pages: ledger write failed');
        return nothing();
      });
      countRecords(this.o.metrics, r.records);
    } catch (err) {
      this.o.logger.error({ err: errorMessage(err) }, 'degraded evaluation failed');
    }
  }

  /**
   * Runs `fn` inside the partition-local store's context for `partition`
   * (null: a tick); `onEnterFailed` hears a failed restore (the store is down).
   */
  private async withPartition<T>(partition: number | null, fn: () => Promise<T>, onEnterFailed?: (err: unknown) => void): Promise<T> {
    const ps = this.o.partitions;
    if (!ps) return fn();
    try {
      await ps.enter(partition);
    } catch (err) {
      ps.leave(false);
      onEnterFailed?.(err);
      throw err;
    }
    let ok = false;
    try {
      const r = await fn();
      ok = true;
      return r;
    } finally {
      ps.leave(ok);
    }
  }

  /** Time-driven rules (sustained, absent, window expiry). */
  async tick(now: number): Promise<LedgerRecord[]> {
    try {
      return await this.queue.run(() => this.withPartition(null, async () => {
        // the batches' completions first: a tick's submit is one step, after every batch before it (ADR 0050)
        await this.completing;
        const ds = await this.o.engine.tick(now);
        // Even with no decision the remediator is ticked (an empty submit): the repair
        // ladder behind it follows its Jobs, validations and quiet periods on this tick.
        // A tick is not redelivered: the remediator keeps records it could not write.
        const { records: rs, retryLater } = await this.o.remediator.submit(ds, { redeliverable: false });
        if (retryLater.length > 0) this.o.logger.warn({ decisions: retryLater.map((r) => r.decisionId) }, 'tick decisions in flight elsewhere: left to that replica');
        if (this.o.ledger && rs.length > 0) await this.o.ledger.append(rs);
        countRecords(this.o.metrics, rs);
        return rs;
      }));
    } catch (err) {
      this.o.metrics.tickFailures.inc();
      throw err;
    }
  }
}

/**
 * The batch's fresh events cut at its fresh release records (ADR 0049), in
 * partition order: events before a release are evaluated before it, events
 * after it on its result. Without releases: one segment of every fresh event.
 */
function segments(valid: readonly EventEnvelope[], fresh: readonly EventEnvelope[], freshMs: readonly number[], releases: ReadonlyArray<{ r: ReleaseRecord; after: number }>): Array<{ events: EventEnvelope[]; times: number[]; release: ReleaseRecord | null }> {
  if (releases.length === 0) return [{ events: [...fresh], times: [...freshMs], release: null }];
  // fresh events are first occurrences (repeats were dropped before the claim), each its own object in `valid`
  const keep = new Map<EventEnvelope, number>(fresh.map((e, j) => [e, freshMs[j] as number]));
  const out: Array<{ events: EventEnvelope[]; times: number[]; release: ReleaseRecord | null }> = [];
  let i = 0;
  const upTo = (end: number): { events: EventEnvelope[]; times: number[] } => {
    const events: EventEnvelope[] = [];
    const times: number[] = [];
    for (; i < end; i++) {
      const e = valid[i] as EventEnvelope;
      const t = keep.get(e);
      if (t !== undefined) {
        events.push(e);
        times.push(t);
      }
    }
    return { events, times };
  };
  for (const { r, after } of releases) out.push({ ...upTo(after), release: r });
  const rest = upTo(valid.length);
  if (rest.events.length > 0) out.push({ ...rest, release: null });
  return out;
}

/** The one partition a batch's messages come from (the consumer hands over one partition's batch at a time). */
function partitionOf(messages: readonly RawMessage[]): number | null {
  const p = messages[0]?.partition;
  if (p === undefined) return null;
  for (const m of messages) if (m.partition !== p) throw new NodewardenError('INTERNAL', `one batch holds messages of partitions ${p} and ${m.partition}`);
  return p;
}

/** What an empty submit does (a fresh object: callers may keep its arrays). */
const nothing = (): SubmitResult => ({ records: [], retryLater: [] });

/** An outage of a dependency (retriable UNAVAILABLE/TIMEOUT), not a bad batch. */
function isUnavailable(err: unknown): boolean {
  if (err instanceof NodewardenError) return err.retriable && (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT');
  // client errors from ioredis (connection closed, max retries) are not wrapped by every adapter
  return err instanceof Error;
}

function countRecords(metrics: EngineServiceMetrics, records: readonly LedgerRecord[]): void {
  for (const r of records) metrics.decisions.inc({ rule: r.rule, action: r.action, outcome: r.outcome });
}
