import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import type { LedgerRecord } from '../../../core/decision.js';
import { JsonlLedgerSink } from '../../../remediations/ledger/jsonl-sink.js';
import { ledgerMessageOf } from '../../../remediations/ledger/kafka-ledger.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { buildLedgerRecord } from '../../../remediations/ledger/record.js';
import { cordon, decision } from './fake-cluster.js';

const at = (s: number): number => Date.parse('2026-11-21T10:00:00Z') + s * 1000;

function rec(s: number, over: Partial<LedgerRecord> = {}): LedgerRecord {
  return { ts: new Date(at(s)).toISOString(), rule: 'r1', action: 'cordon', target: { kind: 'Node', name: 'gpu-1' }, outcome: 'executed', reason: 'x', guard: null, ...over };
}

describe('ledger', () => {
  it('builds the brief §4 record: denied carries the guard and its reason', () => {
    const r = buildLedgerRecord({
      decision: cordon('gpu-worker-042', { id: 'd1', reason: 'Xid 79 (GPU has fallen off the bus) on gpu-worker-042' }),
      outcome: 'denied',
      now: Date.parse('2026-11-21T10:15:24.001Z'),
      verdict: { allowed: false, guard: 'maxUnavailable', reason: 'would make 6 nodes unavailable' },
    });
    expect(r).to.deep.equal({
      ts: '2026-11-21T10:15:24.001Z',
      rule: 'gpu-xid-fatal',
      action: 'cordon',
      target: { kind: 'Node', name: 'gpu-worker-042' },
      outcome: 'denied',
      reason: 'Xid 79 (GPU has fallen off the bus) on gpu-worker-042',
      guard: 'maxUnavailable',
      decisionId: 'd1',
      details: { guardReason: 'would make 6 nodes unavailable' },
    });
  });

  it('adds severity/dedupKey to pages and namespace/toRevision (from the executor) to rollbacks', () => {
    const p = buildLedgerRecord({ decision: decision({ action: 'page', dedupKey: 'k', severity: 'critical' }), outcome: 'executed', now: 0 });
    expect(p).to.include({ severity: 'critical', dedupKey: 'k' });
    const r = buildLedgerRecord({
      decision: decision({ action: 'rollback', target: { kind: 'Deployment', name: 'web' }, params: { toRevision: 2 } }),
      outcome: 'executed',
      now: 0,
      result: { ok: true, toRevision: 7 },
    });
    expect(r.toRevision).to.equal(7);
    expect(r.target).to.deep.equal({ kind: 'Deployment', name: 'web', namespace: 'default' });
    const f = buildLedgerRecord({ decision: cordon('n'), outcome: 'failed', now: 0, result: { ok: false, error: new Error('boom') as never } });
    expect(f.error).to.equal('boom');
  });

  it('memory ledger is bounded and counts what it dropped', async () => {
    const l = new MemoryLedger(3);
    await l.append([rec(1), rec(2), rec(3), rec(4), rec(5)]);
    expect(l.records.map((r) => r.ts)).to.deep.equal([rec(3).ts, rec(4).ts, rec(5).ts]);
    expect(l.dropped).to.equal(2);
  });

  it('JSONL sink writes one object per line', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString()));
    await new JsonlLedgerSink(out).append([rec(1), rec(2)]);
    const lines = chunks.join('').split('\n');
    expect(lines).to.have.length(3);
    expect(lines[2]).to.equal('');
    expect(JSON.parse(lines[0]!)).to.deep.equal(rec(1));
  });
});

describe('ledger idempotency (one decision attempt, one record)', () => {
  it('the memory ledger appends a record once per decision id and attempt; records without a decision id always', async () => {
    const base = { ts: '2026-11-21T10:00:00.000Z', rule: 'r', action: 'cordon' as const, target: { kind: 'Node' as const, name: 'n1' }, reason: 'x', guard: null };
    const a = { ...base, outcome: 'failed' as const, decisionId: 'd1' };
    const retry = { ...base, outcome: 'executed' as const, decisionId: 'd1', details: { attempt: 2 } };
    const noId = { ...base, outcome: 'executed' as const };
    const mem = new MemoryLedger();
    await mem.append([a, a]);
    await mem.append([a, retry, retry, noId, noId]);
    expect(mem.records.map((r) => r.outcome)).to.deep.equal(['failed', 'executed', 'executed', 'executed']);
  });

  it('an approved decision keeps both records: pending-approval, then its outcome (same decision id), each once', async () => {
    // found by the node suite: the executed record of an approved rollback was dropped as a duplicate of its pending-approval record
    const base = { ts: '2026-11-21T10:00:00.000Z', rule: 'r', action: 'rollback' as const, target: { kind: 'DaemonSet' as const, name: 'ds', namespace: 'ns' }, reason: 'x', guard: null, decisionId: 'd1' };
    const pending = { ...base, outcome: 'pending-approval' as const };
    const done = { ...base, outcome: 'executed' as const, details: { approval: { by: 'alice', via: 'api' } } };
    const mem = new MemoryLedger();
    await mem.append([pending, pending]);
    await mem.append([done, done, pending]);
    expect(mem.records.map((r) => r.outcome)).to.deep.equal(['pending-approval', 'executed']);
  });
});

describe('ledger wire format on the Kafka topic (consumers fold by key, ADR 0012)', () => {
  it('a decision record: key = its ledger key (target name without a decision id), target header, ts as timestamp', () => {
    const r: LedgerRecord = { ts: '2026-11-21T10:00:00.000Z', rule: 'r', action: 'cordon', target: { kind: 'Node', name: 'gpu-1' }, outcome: 'executed', reason: 'x', guard: null, decisionId: 'd1', details: { attempt: 2 } };
    expect(ledgerMessageOf(r)).to.deep.equal({ key: 'd1#2', timestamp: String(Date.parse(r.ts)), headers: { 'nodewarden-target': 'gpu-1' } });
    expect(ledgerMessageOf({ ...r, outcome: 'pending-approval', details: { degraded: 'x' } }).key).to.equal('d1#1#degraded#pending');
    const { decisionId: _, ...noId } = r;
    expect(ledgerMessageOf(noId).key).to.equal('gpu-1');
  });

  it('an operator audit: keyed by rule (toggles) or kind, the kind in a header, no timestamp of its own', () => {
    expect(ledgerMessageOf({ ts: '2026-11-21T10:00:00.000Z', kind: 'rule-toggle', rule: 'gpu-xid-fatal', enabled: false, reason: 'x', by: 'alice', expiresAt: null })).to.deep.equal({
      key: 'rule-toggle:gpu-xid-fatal',
      headers: { 'nodewarden-kind': 'rule-toggle' },
    });
    expect(ledgerMessageOf({ ts: '2026-11-21T10:00:00.000Z', kind: 'guard-pause', reason: null, by: 'bob' })).to.deep.equal({ key: 'guard-pause', headers: { 'nodewarden-kind': 'guard-pause' } });
  });
});
