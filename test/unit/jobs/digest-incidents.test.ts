import { expect } from 'chai';
import type { LedgerEntry } from '../../../remediations/ledger/entry.js';
import { buildDigest, renderDigest } from '../../../jobs/daily-digest.js';
import { humanDuration, MAX_LISTED, median, SKEW_MS, summariseIncidents, summariseSilences } from '../../../jobs/digest-incidents.js';
import type { Incident } from '../../../remediations/incidents/incident.js';
import { ManualClock } from '../../../core/clock.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import type { Silence } from '../../../remediations/silences/silence.js';
import { KEEP_ENDED_MS, Silences } from '../../../remediations/silences/silence.js';
import { slackRequestValidator } from '../../receivers/contract.js';
import { FakeCluster } from '../remediations/fake-cluster.js';

const H = 3_600_000;
const TO = Date.parse('2026-11-21T09:00:00Z');
const FROM = TO - 24 * H;

function inc(key: string, over: Partial<Incident>): Incident {
  return {
    dedupKey: `nodewarden/incident/${key}`,
    rule: key,
    labels: { pool: 'h100-train' },
    severity: 'critical',
    summary: 's',
    status: 'open',
    openedAt: FROM + H,
    members: { 'gpu-1': { state: 'firing', since: FROM + H, facts: [] } },
    moreMembers: 0,
    notes: [],
    seq: 1,
    sentSeq: 1,
    lastSentAt: FROM + H,
    sendingUntil: 0,
    sends: 1,
    ...over,
  };
}

function sil(id: string, startsAt: number, endsAt: number): Silence {
  return { id, matchers: [{ name: 'pool', op: '=', value: 'h100-train' }], startsAt, endsAt, reason: 'maintenance', createdBy: 'alice' };
}

describe('jobs: daily digest incidents, MTTR and silences (pure)', () => {
  it('says so plainly with no incidents and no silences', () => {
    const i = summariseIncidents([], FROM, TO);
    expect(i).to.deep.include({ opened: 0, resolved: 0, stillOpenCount: 0, ackCount: 0, mttr: null, longestOpen: null });
    const d = buildDigest([], { from: FROM, to: TO, timezone: 'UTC', view: new FakeCluster(), incidents: [], silences: [] });
    const text = renderDigest(d).blocks.map((b) => b.text?.text ?? '').join('\n');
    expect(text).to.include('*Incidents*: opened *0*, resolved *0*, still open *0*\nMTTR: no incident resolved in the window');
    expect(text).to.include('*Silences*: active *0*, expired in the window *0*');
  });

  it('counts opened, resolved and still open, with incidents spanning either boundary of the window', () => {
    const i = summariseIncidents(
      [
        inc('before-resolved-before', { openedAt: FROM - 5 * H, status: 'resolved', resolvedAt: FROM - H }), // not part of the window at all
        inc('before-resolved-in', { openedAt: FROM - 2 * H, status: 'resolved', resolvedAt: FROM + 2 * H }), // resolved, 4 h, not opened in it
        inc('in-resolved-in', { openedAt: FROM + 10 * H, status: 'resolved', resolvedAt: FROM + 11 * H }), // opened and resolved, 1 h
        inc('before-still-open', { openedAt: FROM - 10 * H }), // open across the whole window
        inc('in-still-open', { openedAt: FROM + 20 * H }),
        inc('after-window', { openedAt: TO + SKEW_MS + 1 }), // the next digest's
      ],
      FROM,
      TO,
    );
    expect([i.opened, i.resolved, i.stillOpenCount]).to.deep.equal([2, 2, 2]);
    expect(i.resolvedList.map((x) => x.rule)).to.deep.equal(['before-resolved-in', 'in-resolved-in']);
    expect(i.mttr).to.deep.equal({ count: 2, meanMs: 2.5 * H, medianMs: 2.5 * H });
    expect(i.stillOpen.map((x) => x.rule)).to.deep.equal(['before-still-open', 'in-still-open']);
    expect(i.longestOpen).to.deep.equal({ dedupKey: 'nodewarden/incident/before-still-open', rule: 'before-still-open', openedAt: FROM - 10 * H, ageMs: 34 * H });
  });

  it('an incident resolved after the window ended was still open at its end', () => {
    const i = summariseIncidents([inc('late', { openedAt: FROM + H, status: 'resolved', resolvedAt: TO + 3 * H })], FROM, TO);
    expect([i.opened, i.resolved, i.stillOpenCount, i.mttr]).to.deep.equal([1, 0, 1, null]);
  });

  it('tolerates clock skew between replicas: a little after the end is the end, a resolve before its trigger is 0 ms', () => {
    const i = summariseIncidents(
      [
        inc('skewed-open', { openedAt: TO + SKEW_MS - 1 }),
        inc('skewed-resolve', { openedAt: FROM + H, status: 'resolved', resolvedAt: FROM + H - 500 }),
        inc('skewed-ack', { openedAt: FROM + H, ack: { by: 'bob', at: TO + 1000, via: 'pagerduty' } }),
      ],
      FROM,
      TO,
    );
    expect(i.opened).to.equal(3);
    expect(i.mttr).to.deep.equal({ count: 1, meanMs: 0, medianMs: 0 });
    expect(i.stillOpen.map((x) => x.rule)).to.deep.equal(['skewed-ack', 'skewed-open']);
    expect(i.stillOpen.find((x) => x.rule === 'skewed-open')?.openedAt).to.equal(TO + SKEW_MS - 1);
    expect(i.longestOpen?.ageMs).to.equal(TO - (FROM + H));
    expect(i.acks).to.deep.equal([{ dedupKey: 'nodewarden/incident/skewed-ack', by: 'bob', via: 'pagerduty', at: TO }]);
  });

  it('ignores documents with broken times rather than failing the digest', () => {
    const i = summariseIncidents([inc('nan', { openedAt: Number.NaN }), inc('ok', { status: 'resolved', resolvedAt: Number.NaN })], FROM, TO);
    expect([i.opened, i.resolved, i.stillOpenCount]).to.deep.equal([1, 0, 1]);
  });

  it('reports who acknowledged and who resolved by hand, and bounds the lists', () => {
    const many = Array.from({ length: MAX_LISTED + 5 }, (_, n) => inc(`r${String(n).padStart(2, '0')}`, { ack: { by: `u${n}`, at: FROM + H + n, via: 'slack' } }));
    many.push(inc('by-hand', { status: 'resolved', resolvedAt: FROM + 3 * H, resolvedBy: { by: 'carol', at: FROM + 3 * H, via: 'pagerduty' }, ack: { by: 'dave', at: FROM - H, via: 'pagerduty' } }));
    const i = summariseIncidents(many, FROM, TO);
    expect(i.stillOpenCount).to.equal(MAX_LISTED + 5);
    expect(i.stillOpen).to.have.length(MAX_LISTED);
    expect(i.ackCount).to.equal(MAX_LISTED + 5); // dave's ack was before the window
    expect(i.acks[0]).to.deep.equal({ dedupKey: 'nodewarden/incident/r00', by: 'u0', via: 'slack', at: FROM + H });
    expect(i.resolvedByPerson).to.equal(1);
    expect(i.resolvedList[0]?.resolvedBy).to.deep.equal({ by: 'carol', via: 'pagerduty' });
  });

  it('median and durations for humans', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 2, 3])).to.equal(2.5);
    expect([humanDuration(40_000), humanDuration(12 * 60_000), humanDuration(65 * 60_000), humanDuration(50 * H)]).to.deep.equal(['40s', '12m', '1h 05m', '2d 2h']);
  });

  it('silences: active at the end of the window, ended within it; not those ended before or starting after', () => {
    const s = summariseSilences([sil('active', FROM - H, TO + H), sil('ended-in', FROM - H, FROM + H), sil('ended-before', FROM - 3 * H, FROM - H), sil('future', TO + H, TO + 2 * H)], FROM, TO);
    expect(s.active.map((x) => x.id)).to.deep.equal(['active']);
    expect(s.expired.map((x) => x.id)).to.deep.equal(['ended-in']);
    expect([s.activeCount, s.expiredCount]).to.deep.equal([1, 1]);
  });
});

describe('jobs: daily digest noisy rules and undone cordons', () => {
  const rec = (h: number, over: Partial<Extract<LedgerEntry, { outcome: string }>>): LedgerEntry => ({
    ts: new Date(FROM + h * H).toISOString(),
    rule: 'gpu-xid-fatal',
    action: 'cordon',
    target: { kind: 'Node', name: 'gpu-001' },
    outcome: 'executed',
    reason: 'r',
    guard: null,
    ...over,
  });

  it('flags a cordon undone outside nodewarden, not one nodewarden undid, and ranks held-back rules', () => {
    const view = FakeCluster.fleet(5, ['h100-train'], 'gpu');
    const names = [...view.nodes.keys()];
    const [a, b] = [names[0] as string, names[1] as string];
    const entries: LedgerEntry[] = [
      rec(1, { target: { kind: 'Node', name: a } }), // a is schedulable now: someone undid it
      rec(2, { target: { kind: 'Node', name: b } }),
      rec(3, { target: { kind: 'Node', name: b }, action: 'uncordon', rule: 'gpu-xid-fatal' }), // nodewarden undid b
      rec(4, { action: 'page', outcome: 'suppressed', guard: 'silenced', rule: 'conntrack-dropping' }),
      rec(5, { action: 'page', outcome: 'suppressed', guard: 'silenced', rule: 'conntrack-dropping' }),
      rec(6, { action: 'page', outcome: 'suppressed', guard: 'incidentOpen', rule: 'conntrack-dropping' }),
      rec(7, { action: 'page', outcome: 'executed', rule: 'conntrack-dropping' }),
    ];
    const d = buildDigest(entries, { from: FROM, to: TO, timezone: 'UTC', view });
    expect(d.cordoned.map((c) => [c.node, c.stillCordoned, c.undone])).to.deep.equal([
      [a, false, true],
      [b, false, false],
    ]);
    expect(d.topRules.map((r) => [r.rule, r.pages, r.count, r.undone])).to.deep.equal([
      ['conntrack-dropping', 1, 1, 0],
      ['gpu-xid-fatal', 0, 3, 1],
    ]);
    expect(d.quietedRules.map((r) => [r.rule, r.suppressed, r.silenced])).to.deep.equal([['conntrack-dropping', 1, 2]]);
    const m = renderDigest(d);
    const validate = slackRequestValidator();
    expect(validate(m), JSON.stringify(validate.errors)).to.equal(true);
    const text = m.blocks.map((x) => x.text?.text ?? '').join('\n');
    expect(text).to.include(`• \`${a}\`: *uncordoned outside nodewarden* since`);
    expect(text).to.include('2. `gpu-xid-fatal`: 0 · 3 — *1* cordon(s) undone outside nodewarden');
    expect(text).to.include('*Most held back* (suppressed · silenced)\n1. `conntrack-dropping`: 1 · 2');
  });

  it('renders incidents and silences within Block Kit limits', () => {
    const incidents = Array.from({ length: 40 }, (_, n) => inc(`rule-${n}-${'x'.repeat(80)}`, { ack: { by: `u${n}`, at: FROM + H, via: 'slack' } }));
    incidents.push(inc('fixed', { status: 'resolved', resolvedAt: FROM + 2 * H + 65 * 60_000, openedAt: FROM + 2 * H }));
    const silences = Array.from({ length: 30 }, (_, n) => sil(`s${n}`, FROM, TO + H));
    const m = renderDigest(buildDigest([], { from: FROM, to: TO, timezone: 'UTC', view: new FakeCluster(), incidents, silences }));
    const validate = slackRequestValidator();
    expect(validate(m), JSON.stringify(validate.errors)).to.equal(true);
    const text = m.blocks.map((x) => x.text?.text ?? '').join('\n');
    expect(text).to.include('*Incidents*: opened *41*, resolved *1*, still open *40*\nMTTR: mean *1h 05m*, median *1h 05m* over 1 resolved');
    expect(text).to.include('…and 30 more open');
    expect(text).to.include('*Silences*: active *30*, expired in the window *0*');
    expect(text).to.include('• active until 2026-11-21 10:00: `pool=h100-train` (maintenance, by alice)');
    expect(m.text).to.include('; incidents: 41 opened, 1 resolved, 40 open');
  });
});

describe('silences: ended ones stay readable for the digest', () => {
  it('expire ends a silence now; list() drops it, history() keeps it KEEP_ENDED_MS, then it is gone', async () => {
    const clock = new ManualClock(TO);
    const s = new Silences(new MemoryDocStore(clock), clock);
    const a = await s.create({ matchers: ['pool=h100-train'], ttlMs: H, reason: 'maintenance', by: 'alice' });
    const b = await s.create({ matchers: ['rule=gpu-xid-fatal'], ttlMs: 2 * H, reason: 'flaky', by: 'bob' });
    clock.advance(10 * 60_000);
    expect(await s.expire(a.id)).to.equal(true);
    expect(await s.expire(a.id)).to.equal(false); // no longer active
    expect((await s.list()).map((x) => x.id)).to.deep.equal([b.id]);
    expect((await s.history()).map((x) => [x.id, x.endsAt])).to.deep.equal([
      [a.id, TO + 10 * 60_000],
      [b.id, TO + 2 * H],
    ]);
    expect(await s.match({ pool: 'h100-train' })).to.equal(null);
    clock.advance(3 * H); // b ended by itself
    expect(await s.list()).to.deep.equal([]);
    expect((await s.history()).map((x) => x.id)).to.deep.equal([a.id, b.id]);
    clock.advance(KEEP_ENDED_MS);
    expect(await s.history()).to.deep.equal([]);
  });
});
