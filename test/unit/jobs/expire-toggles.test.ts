import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { MemoryLogger } from '../../../core/logger.js';
import { applyToggleAudits, emptyToggleState, expireTogglesJob, EXPIRY_BY, expiryRecord } from '../../../jobs/expire-toggles.js';
import { MemoryJobState } from '../../../jobs/job-state.js';
import type { JobContext } from '../../../jobs/job.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import type { LedgerEntry, ToggleAuditRecord } from '../../../remediations/ledger/entry.js';
import { isAudit } from '../../../remediations/ledger/entry.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { fanOutLedger } from '../../../remediations/ledger/store.js';
import { ToggleService } from '../../../rules/toggles/toggle-service.js';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const MIN = 60_000;
const iso = (t: number): string => new Date(t).toISOString();

function audit(rule: string, t: number, enabled: boolean | null, ttlMs: number | null, by = 'alice'): ToggleAuditRecord {
  return { ts: iso(t), kind: 'rule-toggle', rule, enabled, reason: 'maintenance', by, expiresAt: ttlMs === null ? null : iso(t + ttlMs) };
}

describe('jobs: expire-toggles (pure)', () => {
  it('records the expiry of a toggle once it is due, once', () => {
    const s = emptyToggleState();
    const set = audit('gpu-xid-fatal', T0, false, 30 * MIN);
    expect(applyToggleAudits(s, [set], T0 + 10 * MIN)).to.deep.equal([]);
    expect(applyToggleAudits(s, [set], T0 + 30 * MIN)).to.deep.equal([set]);
    expect(applyToggleAudits(s, [set], T0 + 31 * MIN)).to.deep.equal([]);
  });

  it('ignores toggles without TTL, clears, older and re-read records', () => {
    const s = emptyToggleState();
    const recs = [audit('a', T0, false, null), audit('b', T0, false, 5 * MIN), audit('b', T0 + MIN, null, null), audit('c', T0 + MIN, true, MIN), audit('c', T0, false, MIN)];
    const due = applyToggleAudits(s, recs, T0 + 10 * MIN);
    // b was cleared before it expired; c's older record is ignored, its newer one expired
    expect(due.map((a) => [a.rule, a.enabled])).to.deep.equal([['c', true]]);
    expect(applyToggleAudits(s, recs, T0 + 10 * MIN)).to.deep.equal([]);
  });

  it('records the expiry of a toggle that expired before a later change replaced it', () => {
    const s = emptyToggleState();
    const first = audit('r', T0, false, 5 * MIN);
    const second = audit('r', T0 + 20 * MIN, false, 60 * MIN, 'bob');
    expect(applyToggleAudits(s, [first, second], T0 + 21 * MIN)).to.deep.equal([first]);
    // the expiry record read back does not close the newer toggle
    const rec = expiryRecord(first, T0 + 21 * MIN);
    expect(applyToggleAudits(s, [rec], T0 + 30 * MIN)).to.deep.equal([]);
    expect(applyToggleAudits(s, [rec], T0 + 80 * MIN)).to.deep.equal([second]);
  });

  it('an expiry record read back closes the toggle it names (another replica wrote it)', () => {
    const s = emptyToggleState();
    const set = audit('r', T0, false, 5 * MIN);
    applyToggleAudits(s, [set], T0 + MIN);
    expect(applyToggleAudits(s, [expiryRecord(set, T0 + 6 * MIN)], T0 + 7 * MIN)).to.deep.equal([]);
  });

  it('writes an audit record saying what expired and that the rule is back to its file state', () => {
    const r = expiryRecord(audit('gpu-xid-fatal', T0, false, 30 * MIN), T0 + 31 * MIN);
    expect(r).to.deep.equal({
      ts: iso(T0 + 31 * MIN),
      kind: 'rule-toggle',
      rule: 'gpu-xid-fatal',
      enabled: null,
      reason: `expired at ${iso(T0 + 30 * MIN)}: the rule is back to its file state (it was disabled by alice at ${iso(T0)}: maintenance)`,
      by: EXPIRY_BY,
      expiresAt: iso(T0 + 30 * MIN),
    });
  });
});

describe('jobs: expire-toggles (job over memory toggles and ledger)', () => {
  it('drops the expired toggle and records its expiry in the ledger, once', async () => {
    const clock = new ManualClock(T0);
    const toggles = new MemoryRuleToggles(clock);
    const ledger = new MemoryLedger();
    const kafkaLike = new MemoryLedger(100_000, { name: 'kafka-like' });
    const audit = fanOutLedger([ledger, kafkaLike]);
    const service = new ToggleService(toggles, audit, clock);
    await service.disable({ rule: 'gpu-xid-fatal', reason: 'driver upgrade', by: 'alice', ttlMs: 15 * MIN });
    await service.disable({ rule: 'conntrack-dropping', reason: 'noisy', by: 'bob', ttlMs: null });
    const job = expireTogglesJob({ ledger, audit, toggles, state: new MemoryJobState() });
    const ctx = (): JobContext => ({ signal: new AbortController().signal, now: clock.now(), scheduledAt: clock.now(), logger: new MemoryLogger() });

    clock.set(T0 + 5 * MIN);
    expect(await job.run(ctx())).to.deep.include({ expired: 0 });
    clock.set(T0 + 16 * MIN);
    expect(await job.run(ctx())).to.deep.include({ expired: 1 });
    expect(toggles.list(clock.now()).map((t) => t.rule)).to.deep.equal(['conntrack-dropping']);
    expect(toggles.isEnabled('gpu-xid-fatal', true, clock.now())).to.equal(true);
    const expiries = kafkaLike.entries.filter((r) => isAudit(r) && r.by === EXPIRY_BY);
    expect(expiries).to.have.length(1);
    expect(expiries[0]).to.deep.include({ rule: 'gpu-xid-fatal', enabled: null, expiresAt: iso(T0 + 15 * MIN) });
    clock.set(T0 + 17 * MIN);
    await job.run(ctx());
    clock.set(T0 + 60 * MIN);
    await job.run(ctx());
    expect(kafkaLike.entries.filter((r) => isAudit(r) && r.by === EXPIRY_BY)).to.have.length(1);
    expect(ledger.entries.filter((e) => 'kind' in e && e.by === EXPIRY_BY)).to.have.length(1);
  });

  it('a failed audit write fails the run and is retried (the expiry is never lost)', async () => {
    const clock = new ManualClock(T0);
    const ledger = new MemoryLedger();
    await ledger.append([audit('r', T0, false, MIN)]);
    let fail = true;
    const written: LedgerEntry[] = [];
    const job = expireTogglesJob({
      ledger,
      audit: { append: (rs) => (fail ? Promise.reject(new Error('kafka down')) : (written.push(...rs), Promise.resolve())) },
      state: new MemoryJobState(),
    });
    clock.set(T0 + 2 * MIN);
    const ctx = (): JobContext => ({ signal: new AbortController().signal, now: clock.now(), scheduledAt: clock.now(), logger: new MemoryLogger() });
    let err: unknown;
    try {
      await job.run(ctx());
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.include('kafka down');
    fail = false;
    clock.set(T0 + 3 * MIN);
    expect(await job.run(ctx())).to.deep.include({ expired: 1 });
    expect(written.map((w) => ('rule' in w ? w.rule : null))).to.deep.equal(['r']);
  });
});
