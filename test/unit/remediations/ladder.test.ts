/**
 * The repair ladder's state machine (remediations/ladder/ladder.ts): the
 * happy path, escalation on failure / timeout / failed validation / a fault
 * during the quiet period, caps within the window, a person's uncordon, and
 * guard denials that neither count nor escalate. Property tests over random
 * input sequences: the rung only climbs within an episode, caps hold, and a
 * node is only returned after a passed validation and a full quiet period.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { Outcome } from '../../../core/decision.js';
import type { LadderInput, LadderPolicy, LadderRequest, NodeLadder, Rung, Transition } from '../../../remediations/ladder/ladder.js';
import { emptyLadder, MAX_QUEUE, RUNGS, rungForNvidiaAction, transition } from '../../../remediations/ladder/ladder.js';

const M = 60_000;
const T0 = Date.parse('2026-12-01T10:00:00Z');
const POLICY: LadderPolicy = {
  act: true,
  maxAttemptsPerNode: 3,
  maxAttemptsPerGpu: 2,
  windowMs: 24 * 60 * M,
  timeoutMs: { reset: 10 * M, reboot: 30 * M, validate: 30 * M },
  quietMs: 30 * M,
  retryMs: M,
  validation: true,
};
const CORDONED = { unschedulable: true, cordonedByNodewarden: true };

function fault(at: number, start: Rung = 'reset', gpu: string | null = 'GPU-1', isolated = true): Extract<LadderInput, { kind: 'fault' }> {
  return { kind: 'fault', at, faultAt: at - 2000, detectedAt: at - 500, gpu, rule: 'gpu-xid-fatal', reason: 'Xid 79', start, isolated };
}

/** Runs inputs in order; returns every transition. */
class Run {
  l: NodeLadder = emptyLadder('n1');
  readonly ts: Transition[] = [];
  constructor(readonly p: LadderPolicy = POLICY) {}
  on(i: LadderInput): Transition {
    const t = transition(this.l, i, this.p);
    this.l = t.ladder;
    this.ts.push(t);
    return t;
  }
  get last(): LadderRequest | undefined {
    for (let i = this.ts.length - 1; i >= 0; i--) {
      const r = this.ts[i]?.requests;
      if (r && r.length) return r[r.length - 1];
    }
    return undefined;
  }
  /** The ledger outcome of the last request. */
  record(at: number, outcome: Outcome, o: { guard?: string; job?: string | null } = {}): Transition {
    const r = this.last;
    if (!r) throw new Error('no request');
    return this.on({ kind: 'recorded', at, decisionId: r.decisionId, outcome, guard: o.guard ?? null, job: o.job === undefined ? `nodewarden-repair/${r.action}-${r.decisionId.length}` : o.job });
  }
  job(at: number, ok: boolean): Transition {
    const j = this.l.episode?.pending?.job;
    if (!j) throw new Error('no job running');
    return this.on({ kind: 'job', at, job: j, succeeded: ok });
  }
  tick(at: number, node: { unschedulable: boolean; cordonedByNodewarden: boolean } | undefined = CORDONED): Transition {
    return this.on({ kind: 'tick', at, node });
  }
  /** A fault at `at`, its cordon executed, the reset executed and its Job passed, the validation requested and its Job passed. */
  resetPassed(at: number): void {
    this.on(fault(at));
    this.record(at, 'executed');
    this.job(at + M, true);
    this.record(at + M, 'executed');
    this.job(at + 2 * M, true);
  }
  actions(): string[] {
    return this.ts.flatMap((t) => t.requests.map((r) => r.action));
  }
}

describe('repair ladder: state machine', () => {
  it('reset → validate → quiet → uncordon: the node returns to service, the episode closes as returned', () => {
    const r = new Run();
    r.on(fault(T0));
    expect(r.last).to.include({ action: 'reset', gpu: 'GPU-1', node: 'n1' });
    r.record(T0 + 1000, 'executed');
    expect(r.l.episode?.pending?.status).to.equal('running');
    r.job(T0 + 2 * M, true);
    expect(r.last?.action).to.equal('validate');
    r.record(T0 + 2 * M, 'executed');
    r.job(T0 + 10 * M, true);
    expect(r.l.episode?.phase).to.equal('quiet');
    expect(r.tick(T0 + 39 * M).requests).to.have.length(0); // quiet until T0 + 40m
    expect(r.tick(T0 + 40 * M).requests.map((q) => q.action)).to.deep.equal(['uncordon']);
    const done = r.record(T0 + 40 * M, 'executed', { job: null });
    expect(done.closed?.end).to.equal('returned');
    expect(done.closed?.episode.repaired).to.equal(true);
    expect(r.l.episode).to.equal(null);
    expect(r.l.attempts).to.have.length(1); // the reset still counts toward the caps
  });

  it('starts at the rung the catalogue recommends: RESTART_BM → reboot, CONTACT_SUPPORT → hand-over', () => {
    expect(rungForNvidiaAction('RESET_GPU')).to.equal('reset');
    expect(rungForNvidiaAction('RESTART_BM')).to.equal('reboot');
    expect(rungForNvidiaAction('CONTACT_SUPPORT')).to.equal('replace');
    expect(rungForNvidiaAction('RESTART_APP')).to.equal(null);
    expect(rungForNvidiaAction('IGNORE')).to.equal(null);
    expect(rungForNvidiaAction('XID_154', 'node-reboot')).to.equal('reboot');
    expect(rungForNvidiaAction('XID_154', 'gpu-reset')).to.equal('reset');
    expect(rungForNvidiaAction('XID_154', 'none')).to.equal(null);
    const a = new Run();
    a.on(fault(T0, 'reboot'));
    expect(a.last?.action).to.equal('reboot');
    const b = new Run();
    b.on(fault(T0, 'replace'));
    expect(b.last).to.include({ action: 'replace', severity: 'critical' });
    expect(b.last?.history[0]?.what).to.match(/fault: Xid 79/);
  });

  it('a reset without a GPU to name reboots instead', () => {
    const r = new Run();
    r.on(fault(T0, 'reset', null));
    expect(r.last?.action).to.equal('reboot');
  });

  it('a failed reset escalates to reboot, a failed reboot hands over, and nothing comes after the hand-over', () => {
    const r = new Run();
    r.on(fault(T0));
    r.record(T0, 'executed');
    r.job(T0 + M, false);
    expect(r.last?.action).to.equal('reboot');
    r.record(T0 + M, 'executed');
    r.job(T0 + 5 * M, false);
    expect(r.last?.action).to.equal('replace');
    r.record(T0 + 5 * M, 'executed', { job: null });
    for (let t = 6; t < 200; t += 7) r.tick(T0 + t * M);
    expect(r.actions()).to.deep.equal(['reset', 'reboot', 'replace']);
    expect(r.l.episode?.phase).to.equal('handover');
  });

  it('a step that times out escalates; a Job that cannot even be created counts and escalates', () => {
    const r = new Run();
    r.on(fault(T0));
    r.record(T0, 'executed');
    expect(r.tick(T0 + 9 * M).requests).to.have.length(0);
    expect(r.tick(T0 + 10 * M).requests.map((q) => q.action)).to.deep.equal(['reboot']);
    r.record(T0 + 10 * M, 'failed', { job: null });
    expect(r.last?.action).to.equal('replace');
    expect(r.l.attempts.map((a) => a.step)).to.deep.equal(['reset', 'reboot']);
  });

  it('a failed validation or a fault during the quiet period escalates', () => {
    const r = new Run();
    r.on(fault(T0));
    r.record(T0, 'executed');
    r.job(T0 + M, true);
    r.record(T0 + M, 'executed');
    r.job(T0 + 2 * M, false);
    expect(r.last?.action).to.equal('reboot');
    r.record(T0 + 3 * M, 'executed');
    r.job(T0 + 8 * M, true);
    r.record(T0 + 8 * M, 'executed');
    r.job(T0 + 9 * M, true);
    expect(r.l.episode?.phase).to.equal('quiet');
    r.on(fault(T0 + 20 * M));
    expect(r.last?.action).to.equal('replace');
  });

  it('without a validation template a repaired node is held for a person, never returned', () => {
    const r = new Run({ ...POLICY, validation: false });
    r.on(fault(T0));
    r.record(T0, 'executed');
    r.job(T0 + M, true);
    expect(r.last).to.include({ action: 'page' });
    expect(r.last?.reason).to.match(/no validation is configured/);
    for (let t = 2; t < 500; t += 13) r.tick(T0 + t * M);
    expect(r.actions()).to.not.include('uncordon');
    expect(r.l.episode?.phase).to.equal('held');
  });

  it('guard denials neither count as attempts nor escalate: the same step is asked for again after the retry interval', () => {
    const r = new Run();
    r.on(fault(T0));
    r.record(T0, 'denied', { guard: 'paused', job: null });
    expect(r.tick(T0 + M / 2).requests).to.have.length(0);
    const again = r.tick(T0 + M);
    expect(again.requests.map((q) => q.action)).to.deep.equal(['reset']);
    r.record(T0 + M, 'denied', { guard: 'circuitOpen', job: null });
    r.tick(T0 + 2 * M);
    expect(r.actions()).to.deep.equal(['reset', 'reset', 'reset']);
    expect(new Set(r.ts.flatMap((t) => t.requests.map((q) => q.decisionId))).size).to.equal(3); // a new decision id each time
    expect(r.l.attempts).to.have.length(0);
  });

  it('a record of an older request does not move the episode', () => {
    const r = new Run();
    r.on(fault(T0));
    const first = r.last?.decisionId ?? '';
    r.record(T0, 'denied', { guard: 'paused', job: null });
    r.tick(T0 + M);
    const t = r.on({ kind: 'recorded', at: T0 + M, decisionId: first, outcome: 'executed', guard: null, job: 'ns/x' });
    expect(t.changed).to.equal(false);
  });

  it("a person's uncordon closes the episode as resolved by a person (not repaired); a later fault starts a new episode", () => {
    const r = new Run();
    r.on(fault(T0));
    const firstId = r.l.episode?.id;
    const t = r.tick(T0 + M, { unschedulable: false, cordonedByNodewarden: false });
    expect(t.closed?.end).to.equal('resolved-by-person');
    expect(t.closed?.episode.repaired).to.equal(false);
    r.on(fault(T0 + 60 * M));
    expect(r.l.episode?.id).to.not.equal(firstId);
  });

  it('the episode remembers the rule episodes that isolated it; returned by the ladder or by a person it is back in service (they are released), not after a takeover or a rule clear', () => {
    const iso = (rule: string, scope: string) => ({ rule, scope });
    const a = new Run();
    a.on({ ...fault(T0), isolation: iso('gpu-xid-fatal', 'n:n1|GPU-1') });
    // the same isolation by another rule: remembered (once); another GPU's taint is queued with its own
    a.on({ ...fault(T0 + 1000, 'reboot', null), rule: 'gpu-xid-node-fatal', isolation: iso('gpu-xid-node-fatal', 'n:n1') });
    a.on({ ...fault(T0 + 2000, 'reboot', null), rule: 'gpu-xid-node-fatal', isolation: iso('gpu-xid-node-fatal', 'n:n1') });
    a.on({ ...fault(T0 + 3000, 'reset', 'GPU-2'), scope: 'device', isolation: iso('gpu-xid-fatal', 'n:n1|GPU-2') });
    expect(a.l.episode?.isolatedBy).to.deep.equal([iso('gpu-xid-fatal', 'n:n1|GPU-1'), iso('gpu-xid-node-fatal', 'n:n1')]);
    expect(a.l.queue?.[0]?.isolatedBy).to.deep.equal([iso('gpu-xid-fatal', 'n:n1|GPU-2')]);
    a.record(T0 + 4000, 'executed');
    a.job(T0 + 2 * M, true);
    a.record(T0 + 2 * M, 'executed');
    a.job(T0 + 4 * M, true);
    a.tick(T0 + 40 * M);
    const back = a.record(T0 + 40 * M, 'executed', { job: null });
    expect(back.closed).to.include({ end: 'returned', inService: true });
    // the queued GPU's episode starts with its own isolation
    expect(a.l.episode?.isolatedBy).to.deep.equal([iso('gpu-xid-fatal', 'n:n1|GPU-2')]);

    const person = new Run();
    person.on({ ...fault(T0), isolation: iso('gpu-xid-fatal', 'n:n1|GPU-1') });
    expect(person.tick(T0 + M, { unschedulable: false, cordonedByNodewarden: false }).closed).to.include({ end: 'resolved-by-person', inService: true });

    const takeover = new Run();
    takeover.on({ ...fault(T0), isolation: iso('gpu-xid-fatal', 'n:n1|GPU-1') });
    const t = takeover.tick(T0 + M, { unschedulable: true, cordonedByNodewarden: false });
    expect(t.closed?.end).to.equal('resolved-by-person');
    expect(t.closed?.inService, 'still cordoned, by a person').to.equal(undefined);

    const cleared = new Run();
    cleared.on({ ...fault(T0), isolation: iso('gpu-xid-fatal', 'n:n1|GPU-1') });
    const c = cleared.on({ kind: 'uncordoned', at: T0 + M });
    expect(c.closed?.end).to.equal('returned');
    expect(c.closed?.inService, "a rule's own clear keeps the rule's cooldown").to.equal(undefined);
  });

  it('a cordon a person took over (re-cordoned by hand) is theirs', () => {
    const r = new Run();
    r.on(fault(T0));
    expect(r.tick(T0 + M, { unschedulable: true, cordonedByNodewarden: false }).closed?.end).to.equal('resolved-by-person');
  });

  it('a denied cordon starts nothing', () => {
    const r = new Run();
    const t = r.on(fault(T0, 'reset', 'GPU-1', false));
    expect(t.changed).to.equal(false);
    expect(r.l.episode).to.equal(null);
  });

  it('caps: after 2 resets of one GPU the next episode reboots; after 3 steps on the node it hands over at once', () => {
    const r = new Run();
    let t = T0;
    const cycle = (): void => {
      r.resetPassed(t);
      r.tick(t + 40 * M);
      r.record(t + 40 * M, 'executed', { job: null });
      t += 60 * M;
    };
    cycle();
    cycle();
    cycle(); // GPU-1 was reset twice within 24 h: this episode reboots
    expect(r.actions().filter((a) => a === 'reset' || a === 'reboot')).to.deep.equal(['reset', 'reset', 'reboot']);
    r.on(fault(t));
    expect(r.last?.action).to.equal('replace'); // 3 steps on n1 within 24 h
    // a day later the window has moved on: a new episode may reset again
    const r2 = new Run();
    r2.l = { ...r.l, episode: null };
    r2.on(fault(t + 25 * 60 * M));
    expect(r2.last?.action).to.equal('reset');
  });
});

/** Random but well-formed inputs, following what the driver can send. */
function arbInputs(): fc.Arbitrary<Array<{ kind: number; dt: number; ok: boolean; rung: number; outcome: number; gpu: number; person: number }>> {
  return fc.array(
    fc.record({
      kind: fc.integer({ min: 0, max: 4 }),
      dt: fc.integer({ min: 0, max: 90 * M }),
      ok: fc.boolean(),
      rung: fc.integer({ min: 0, max: 2 }),
      outcome: fc.integer({ min: 0, max: 5 }),
      gpu: fc.integer({ min: 0, max: 2 }),
      person: fc.integer({ min: 0, max: 30 }),
    }),
    { minLength: 1, maxLength: 80 },
  );
}

const OUTCOMES: Outcome[] = ['executed', 'failed', 'denied', 'suppressed', 'executed', 'executed'];
const GUARDS = [null, null, 'circuitOpen', 'rateLimit', null, null];

/** A random step of kind 1 (the ledger outcome of the pending request) or 2 (its Job finished), when the episode has one; else undefined. */
function recordOrJob(r: Run, s: { kind: number; outcome: number; ok: boolean }, t: number): LadderInput | undefined {
  const pd = r.l.episode?.pending;
  if (s.kind === 1 && pd && r.last) {
    const o = OUTCOMES[s.outcome] ?? 'executed';
    return { kind: 'recorded', at: t, decisionId: r.last.decisionId, outcome: o, guard: GUARDS[s.outcome] ?? null, job: s.ok ? `ns/j${t}` : null };
  }
  if (s.kind === 2 && pd?.status === 'running' && pd.job) return { kind: 'job', at: t, job: pd.job, succeeded: s.ok };
  return undefined;
}

describe('repair ladder: properties', () => {
  it('within an episode the rung never goes down, caps are never exceeded, and every return follows a passed validation and a full quiet period', () => {
    fc.assert(
      fc.property(arbInputs(), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), (steps, maxNode, maxGpu) => {
        const p: LadderPolicy = { ...POLICY, maxAttemptsPerNode: maxNode, maxAttemptsPerGpu: maxGpu };
        const r = new Run(p);
        let t = T0;
        let lastRung: { episode: string; idx: number } | null = null;
        let quietSince: number | null = null;
        for (const s of steps) {
          t += s.dt;
          const i: LadderInput =
            s.kind === 0 || !r.l.episode
              ? fault(t, RUNGS[s.rung] ?? 'reset', s.gpu === 0 ? null : `GPU-${s.gpu}`)
              : (recordOrJob(r, s, t) ?? { kind: 'tick', at: t, node: s.person === 0 ? { unschedulable: false, cordonedByNodewarden: false } : CORDONED });
          const before = r.l.episode;
          const tr = r.on(i);
          const e = tr.ladder.episode;
          // the rung only climbs within an episode
          if (e) {
            const idx = RUNGS.indexOf(e.rung);
            if (lastRung && lastRung.episode === e.id) expect(idx).to.be.at.least(lastRung.idx);
            lastRung = { episode: e.id, idx };
          }
          // caps within the window, counted from the attempts kept
          const recent = tr.ladder.attempts.filter((a) => a.at > t - p.windowMs);
          expect(recent.length).to.be.at.most(maxNode);
          for (const g of ['GPU-1', 'GPU-2']) expect(recent.filter((a) => a.step === 'reset' && a.gpu === g).length).to.be.at.most(maxGpu);
          // at most one request per transition, and never a reset or reboot after the hand-over
          expect(tr.requests.length).to.be.at.most(1);
          if (before?.rung === 'replace' && e?.id === before.id) for (const q of tr.requests) expect(q.action).to.not.be.oneOf(['reset', 'reboot']);
          if (e?.phase === 'quiet' && before?.phase !== 'quiet') quietSince = t;
          for (const q of tr.requests)
            if (q.action === 'uncordon' && !q.reason.includes('(retry)')) {
              expect(before?.phase).to.equal('quiet');
              expect(quietSince).to.not.equal(null);
              expect(t - (quietSince ?? t)).to.be.at.least(p.quietMs);
            }
          if (tr.closed?.end === 'returned') expect(tr.closed.episode.repaired).to.equal(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('guard denials never block recovery: whatever the guard says, the pending step is asked for again, and a returned node needs no budget', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('paused', 'circuitOpen', 'rateLimit', 'maxUnavailable', 'cooldown'), { minLength: 1, maxLength: 20 }), (guards) => {
        const r = new Run();
        let t = T0;
        r.resetPassed(t);
        t += 40 * M;
        r.tick(t);
        expect(r.last?.action).to.equal('uncordon');
        for (const g of guards) {
          r.record(t, 'denied', { guard: g, job: null });
          t += POLICY.retryMs;
          const again = r.tick(t);
          expect(again.requests.map((q) => q.action)).to.deep.equal(['uncordon']);
          expect(r.l.episode?.rung).to.equal('reset'); // a denial never escalates
        }
        expect(r.record(t, 'executed', { job: null }).closed?.end).to.equal('returned');
      }),
      { numRuns: 200 },
    );
  });
});

/** A held fault (ADR 0034): the rule matched on the node again while it cooled down. */
function held(at: number, gpu: string | null = 'GPU-1', start: Rung | null = 'reset'): LadderInput {
  return { kind: 'held', at, gpu, rule: 'gpu-xid-fatal', reason: 'gpu.xid Xid 95', start };
}

/** fault → reset → validation passed: the episode is in its quiet period at T0 + 2 m (quiet until T0 + 32 m). */
function toQuiet(r: Run, f: LadderInput = fault(T0)): void {
  r.on(f);
  r.record(T0, 'executed');
  r.job(T0 + M, true);
  r.record(T0 + M, 'executed');
  r.job(T0 + 2 * M, true);
  expect(r.l.episode?.phase).to.equal('quiet');
}

describe('repair ladder: held faults (a fault during the rule cooldown, ADR 0034)', () => {
  it('a held fault during the quiet period: no return to service, the next rung up (reset → reboot)', () => {
    const r = new Run();
    toQuiet(r);
    const t = r.on(held(T0 + 10 * M));
    expect(t.requests.map((q) => q.action)).to.deep.equal(['reboot']);
    expect(r.l.episode?.phase).to.equal('repair');
    expect(r.l.episode?.history.map((h) => h.what).join('\n')).to.match(/fault again during quiet: gpu\.xid Xid 95 \(rule gpu-xid-fatal, held by its cooldown\)/);
    // the old quiet period's end passes: nothing is returned
    expect(r.tick(T0 + 40 * M).requests).to.have.length(0);
    expect(r.actions()).to.not.include('uncordon');
  });

  it('a held fault during validation escalates as a failed validation does', () => {
    const r = new Run();
    r.on(fault(T0));
    r.record(T0, 'executed');
    r.job(T0 + M, true);
    expect(r.l.episode?.phase).to.equal('validate');
    expect(r.on(held(T0 + 2 * M)).requests.map((q) => q.action)).to.deep.equal(['reboot']);
  });

  it('a held fault on a node without an episode changes nothing (no write)', () => {
    const r = new Run();
    const t = r.on(held(T0));
    expect(t.changed).to.equal(false);
    expect(r.l.episode).to.equal(null);
  });

  it('a held fault during the repair step, the hand-over or after the return changes nothing', () => {
    const r = new Run();
    r.on(fault(T0));
    expect(r.on(held(T0 + 10)).changed, 'repair').to.equal(false);
    const h = new Run();
    h.on(fault(T0, 'replace'));
    expect(h.on(held(T0 + 10)).changed, 'hand-over').to.equal(false);
    const q = new Run();
    toQuiet(q);
    q.tick(T0 + 40 * M);
    expect(q.record(T0 + 40 * M, 'executed', { job: null }).closed?.end).to.equal('returned');
    expect(q.on(held(T0 + 41 * M)).changed, 'returned').to.equal(false);
  });

  it('a GPU episode sees held faults of its own GPU only', () => {
    const r = new Run();
    toQuiet(r, { ...fault(T0), scope: 'device' });
    expect(r.on(held(T0 + 5 * M, 'GPU-2')).changed, 'another GPU').to.equal(false);
    expect(r.on(held(T0 + 5 * M, null)).changed, 'no GPU named').to.equal(false);
    expect(r.on(held(T0 + 6 * M, 'GPU-1')).requests.map((q) => q.action)).to.deep.equal(['reboot']);
    // a node episode's quiet period is the node's: any GPU's fault counts
    const n = new Run();
    toQuiet(n);
    expect(n.on(held(T0 + 5 * M, 'GPU-2')).requests.map((q) => q.action)).to.deep.equal(['reboot']);
  });

  it('a fault again asking for more goes to what it asks for, never past it: reset + reboot-class fault → reboot (not the hand-over)', () => {
    const r = new Run();
    toQuiet(r);
    expect(r.on(held(T0 + 5 * M, 'GPU-1', 'reboot')).requests.map((q) => q.action)).to.deep.equal(['reboot']);
  });

  it('a fault again asking for the hand-over during the quiet period hands over and never returns the node', () => {
    const r = new Run();
    toQuiet(r);
    r.on(held(T0 + 5 * M, 'GPU-1', 'replace'));
    expect(r.last).to.include({ action: 'replace', severity: 'critical' });
    r.record(T0 + 5 * M, 'executed', { job: null });
    for (let t = 6; t < 200; t += 7) r.tick(T0 + t * M);
    expect(r.actions()).to.deep.equal(['reset', 'validate', 'replace']);
    expect(r.l.episode?.phase).to.equal('handover');
  });
});

describe('repair ladder: a second faulty GPU on the node (one episode at a time, the next queued)', () => {
  const taint = (at: number, gpu: string, start: Rung = 'reset'): LadderInput => ({ ...fault(at, start, gpu), scope: 'device' });

  it("a second GPU tainted during a GPU episode is queued, then gets its own episode: its own reset, validation, quiet period and untaint", () => {
    const r = new Run();
    r.on(taint(T0, 'GPU-1'));
    const t = r.on(taint(T0 + 30_000, 'GPU-2'));
    expect(t.requests, 'nothing asked for GPU-2 yet').to.have.length(0);
    expect(r.l.queue?.map((q) => q.gpu)).to.deep.equal(['GPU-2']);
    expect(r.on(taint(T0 + 40_000, 'GPU-2')).ladder.queue, 'queued once').to.have.length(1);
    r.record(T0, 'executed');
    r.job(T0 + M, true);
    r.record(T0 + M, 'executed');
    r.job(T0 + 2 * M, true);
    r.tick(T0 + 40 * M);
    const back = r.record(T0 + 40 * M, 'executed', { job: null });
    expect(back.closed?.episode.gpu).to.equal('GPU-1');
    expect(back.closed?.end).to.equal('returned');
    // GPU-2's episode starts at once, with its own decision ids
    expect(back.requests.map((q) => [q.action, q.gpu])).to.deep.equal([['reset', 'GPU-2']]);
    const e2 = r.l.episode;
    expect(e2).to.include({ gpu: 'GPU-2', scope: 'device', rung: 'reset' });
    expect(e2?.id).to.not.equal(back.closed?.episode.id);
    expect(r.l.queue).to.deep.equal([]);
    r.record(T0 + 40 * M, 'executed');
    r.job(T0 + 41 * M, true);
    r.record(T0 + 41 * M, 'executed');
    r.job(T0 + 42 * M, true);
    r.tick(T0 + 80 * M);
    expect(r.record(T0 + 80 * M, 'executed', { job: null }).closed).to.deep.include({ end: 'returned' });
    expect(r.actions()).to.deep.equal(['reset', 'validate', 'uncordon', 'reset', 'validate', 'uncordon']);
    expect(r.l.attempts.map((a) => a.gpu)).to.deep.equal(['GPU-1', 'GPU-2']);
  });

  it('a GPU tainted during a node episode is queued; the node cordoned during a GPU episode is queued too', () => {
    const n = new Run();
    n.on(fault(T0, 'reboot', null));
    n.on(taint(T0 + 1000, 'GPU-3'));
    expect(n.l.queue?.map((q) => [q.scope, q.gpu])).to.deep.equal([['device', 'GPU-3']]);
    const g = new Run();
    g.on(taint(T0, 'GPU-1'));
    g.on(fault(T0 + 1000, 'reboot', null));
    expect(g.l.queue?.map((q) => [q.scope, q.gpu])).to.deep.equal([['node', null]]);
    // a person's end of the first episode starts the queued one
    const t = g.tick(T0 + 2 * M, { unschedulable: false, cordonedByNodewarden: false });
    expect(t.closed?.end).to.equal('resolved-by-person');
    expect(g.l.episode).to.include({ scope: 'node', rung: 'reboot' });
  });

  it("a queued GPU that nodewarden untainted meanwhile (a rule's clear) leaves the queue: no episode for it later", () => {
    const r = new Run();
    r.on(taint(T0, 'GPU-1', 'replace'));
    r.on(taint(T0 + 1000, 'GPU-2'));
    r.on(fault(T0 + 2000, 'reboot', null));
    expect(r.on({ kind: 'uncordoned', at: T0 + M, gpu: 'GPU-2' }).ladder.queue?.map((q) => q.scope)).to.deep.equal(['node']);
    expect(r.l.episode?.gpu, 'not the open episode').to.equal('GPU-1');
    expect(r.on({ kind: 'uncordoned', at: T0 + 2 * M }).ladder.queue).to.deep.equal([]);
    expect(r.l.episode?.gpu, 'an uncordon does not end a GPU episode').to.equal('GPU-1');
  });

  it('a cordon of the node during a node episode is the same isolation: not queued', () => {
    const r = new Run();
    r.on(fault(T0));
    r.on(fault(T0 + 1000, 'reset', 'GPU-2'));
    expect(r.l.queue ?? []).to.have.length(0);
  });

  it('the node leaving the cluster drops the queue; the queue is bounded', () => {
    const r = new Run();
    r.on(taint(T0, 'GPU-1', 'replace'));
    for (let i = 0; i < 40; i++) r.on(taint(T0 + 1000 + i, `GPU-${i + 2}`));
    expect(r.l.queue).to.have.length(MAX_QUEUE);
    r.record(T0 + M, 'executed', { job: null });
    const t = r.on({ kind: 'tick', at: T0 + 2 * M, node: undefined });
    expect(t.closed?.end).to.equal('node-gone');
    expect(r.l.episode).to.equal(null);
    expect(r.l.queue).to.deep.equal([]);
  });
});

describe('repair ladder: properties with held faults and second GPUs', () => {
  it('no return after a fault in the quiet period (without a new validation and a full quiet period), the rung only climbs, caps hold, one episode at a time, no isolated fault lost', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ kind: fc.integer({ min: 0, max: 6 }), dt: fc.integer({ min: 0, max: 40 * M }), ok: fc.boolean(), rung: fc.integer({ min: 0, max: 3 }), outcome: fc.integer({ min: 0, max: 5 }), gpu: fc.integer({ min: 0, max: 3 }), device: fc.boolean(), person: fc.integer({ min: 0, max: 40 }) }),
          { minLength: 1, maxLength: 100 },
        ),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (steps, maxNode, maxGpu) => {
          const p: LadderPolicy = { ...POLICY, maxAttemptsPerNode: maxNode, maxAttemptsPerGpu: maxGpu };
          const r = new Run(p);
          let t = T0;
          const rungs = new Map<string, number>();
          /** Per episode: a fault on it came back in validation / the quiet period and no validation passed since. */
          const faulted = new Set<string>();
          let quietSince: number | null = null;
          let isolations = 0;
          let opened = 0;
          for (const s of steps) {
            t += s.dt;
            const gpu = s.gpu === 0 ? null : `GPU-${s.gpu}`;
            const start = s.rung === 3 ? null : (RUNGS[s.rung] ?? 'reset');
            let i: LadderInput;
            const progress = r.l.episode ? recordOrJob(r, s, t) : undefined;
            if (s.kind === 0 || !r.l.episode) i = { ...fault(t, start ?? 'reset', gpu), scope: s.device ? 'device' : 'node' };
            else if (progress) i = progress;
            else if (s.kind === 3 || s.kind === 4) i = held(t, gpu, start);
            else if (s.kind === 6 && s.person % 4 === 0) i = gpu === null || !s.device ? { kind: 'uncordoned', at: t } : { kind: 'uncordoned', at: t, gpu };
            else i = { kind: 'tick', at: t, node: s.person === 0 ? { unschedulable: false, cordonedByNodewarden: false } : CORDONED };
            const before = r.l.episode;
            const tr = r.on(i);
            const e = tr.ladder.episode;
            if (i.kind === 'fault' && i.isolated) isolations++;
            if (e && e.id !== before?.id) opened++;
            // a fault on what the episode returns, during validation or quiet: remembered until a new validation passes
            if (before && (i.kind === 'held' || i.kind === 'fault') && (before.phase === 'quiet' || before.phase === 'validate') && (before.scope !== 'device' || (i.gpu !== null && i.gpu === before.gpu))) {
              faulted.add(before.id);
              expect(e?.id, 'the episode stays open').to.equal(before.id);
              expect(e?.phase, 'no longer validating or quiet').to.not.be.oneOf(['quiet', 'validate', 'return']);
            }
            if (e && before?.id === e.id && e.phase === 'quiet' && before.phase !== 'quiet') {
              faulted.delete(e.id);
              quietSince = t;
            }
            for (const q of tr.requests)
              if (q.action === 'uncordon' && !q.reason.includes('(retry)')) {
                expect(faulted.has(q.episode), 'a return after a fault in the quiet period').to.equal(false);
                expect(t - (quietSince ?? Number.POSITIVE_INFINITY)).to.be.at.least(p.quietMs);
              }
            // the rung only climbs within an episode
            if (e) {
              const idx = RUNGS.indexOf(e.rung);
              expect(idx).to.be.at.least(rungs.get(e.id) ?? 0);
              rungs.set(e.id, idx);
            }
            if (before?.rung === 'replace' && e?.id === before.id) for (const q of tr.requests) expect(q.action).to.not.be.oneOf(['reset', 'reboot']);
            // caps within the window
            const recent = tr.ladder.attempts.filter((a) => a.at > t - p.windowMs);
            expect(recent.length).to.be.at.most(maxNode);
            for (const g of ['GPU-1', 'GPU-2', 'GPU-3']) expect(recent.filter((a) => a.step === 'reset' && a.gpu === g).length).to.be.at.most(maxGpu);
            expect(tr.requests.length).to.be.at.most(1);
            expect((tr.ladder.queue ?? []).length).to.be.at.most(MAX_QUEUE);
            // every queued fault is a separate isolation, and none waits while no episode is open
            if (!e) expect(tr.ladder.queue ?? []).to.have.length(0);
            if (tr.closed?.end === 'returned') expect(tr.closed.episode.repaired || tr.closed.episode.phase !== 'return').to.equal(true);
          }
          expect(opened).to.be.at.most(isolations);
        },
      ),
      { numRuns: 300 },
    );
  });
});
