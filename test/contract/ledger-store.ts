/**
 * The ledger contract: one suite, run against every ledger (memory in
 * test/unit, the Redis stream and the Kafka topic in test/integration).
 *
 * Every ledger is a `LedgerWriter`: entries come back as they were given
 * (decisions and operator audits alike), one decision attempt is one entry
 * (record.ts `ledgerKey`), audits and records without a decision id are
 * always appended. What "comes back" means is the fixture's: a store's query,
 * or for the Kafka topic what a consumer reads and folds by key (ADR 0012).
 * Stores that can be read back (`LedgerStore`: memory, Redis) also answer the
 * control API's query (window, rule, node, outcome, limit; newest first) and trim.
 */
import { expect } from 'chai';
import type { LedgerRecord } from '../../core/decision.js';
import type { AuditRecord, LedgerEntry, ToggleAuditRecord } from '../../remediations/ledger/entry.js';
import type { LedgerStore, LedgerWriter } from '../../remediations/ledger/store.js';

export interface LedgerFixture {
  /** The ledger under test, empty. */
  writer: LedgerWriter;
  /** Everything appended so far as a reader sees it, oldest first (in append order). */
  readBack(): Promise<LedgerEntry[]>;
  /** The same ledger as a store, when it can be queried and trimmed. */
  store?: LedgerStore;
  close(): Promise<void>;
}

const T0 = Date.parse('2026-11-21T10:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();

function rec(s: number, over: Partial<LedgerRecord> = {}): LedgerRecord {
  return {
    ts: at(s),
    rule: 'gpu-xid-fatal',
    action: 'cordon',
    target: { kind: 'Node', name: `gpu-${s % 5}` },
    outcome: 'executed',
    reason: `r${s}`,
    guard: null,
    decisionId: `d${s}`,
    ...over,
  };
}

const toggle = (s: number, rule = 'gpu-xid-fatal', expiresAt: string | null = null): ToggleAuditRecord => ({ ts: at(s), kind: 'rule-toggle', rule, enabled: false, reason: `t${s}`, by: 'alice', expiresAt });
const pause = (s: number): AuditRecord => ({ ts: at(s), kind: 'guard-pause', reason: `p${s}`, by: 'bob' });

/** What identifies an entry in the assertions: its reason (unique per entry in these cases) and, for records, outcome and attempt. */
function tag(e: LedgerEntry): string {
  if ('kind' in e) return `${e.kind}:${e.reason ?? '-'}`;
  const attempt = typeof e.details?.attempt === 'number' ? `#${e.details.attempt}` : '';
  return `${e.reason}:${e.outcome}${attempt}${e.details?.degraded === undefined ? '' : ':degraded'}`;
}

/** `queries`: the ledger is a `LedgerStore` (the fixture's `store`), so the query and trim cases run too. */
export function ledgerStoreContract(adapter: string, factory: () => Promise<LedgerFixture>, o: { queries: boolean }): void {
  describe(`ledger contract: ${adapter}`, function () {
    let f: LedgerFixture;
    beforeEach(async () => {
      f = await factory();
    });
    afterEach(async () => {
      await f.close();
    });

    describe('append (every ledger)', () => {
      it('gives back decisions and operator audits exactly as appended, in order', async () => {
        const first: LedgerEntry[] = [rec(1, { details: { faultAt: at(0), guardReason: 'x' } }), toggle(2), rec(3, { action: 'page', severity: 'critical', dedupKey: 'k1', outcome: 'denied', guard: 'rateLimit' })];
        const second: LedgerEntry[] = [pause(4), toggle(5, 'gpu-xid-fatal', at(3605)), rec(6, { action: 'rollback', target: { kind: 'DaemonSet', name: 'drv', namespace: 'gpu-operator' }, toRevision: 3 })];
        await f.writer.append(first);
        await f.writer.append([]);
        await f.writer.append(second);
        expect(await f.readBack()).to.deep.equal([...first, ...second]);
      });

      it('one decision attempt, one entry: the same attempt appended again (a redelivered batch, a retried write) is not', async () => {
        const a = rec(1, { outcome: 'failed' });
        await f.writer.append([a, a]);
        await f.writer.append([a, rec(2, { decisionId: 'd1', details: { attempt: 2 } })]);
        await f.writer.append([rec(2, { decisionId: 'd1', details: { attempt: 2 } }), a]);
        expect((await f.readBack()).map(tag)).to.deep.equal(['r1:failed', 'r2:executed#2']);
      });

      it("a decision's pending-approval record and its outcome are two entries; a degraded page and the guarded one too", async () => {
        const pending = rec(1, { action: 'rollback', target: { kind: 'DaemonSet', name: 'drv', namespace: 'ns' }, outcome: 'pending-approval' });
        const done = { ...pending, ts: at(2), reason: 'r2', outcome: 'executed' as const };
        const degraded = rec(3, { action: 'page', decisionId: 'p1', details: { degraded: 'guard unavailable' } });
        const guarded = rec(4, { action: 'page', decisionId: 'p1' });
        await f.writer.append([pending, pending]);
        await f.writer.append([done, pending, degraded]);
        await f.writer.append([degraded, guarded, done]);
        expect((await f.readBack()).map(tag)).to.deep.equal(['r1:pending-approval', 'r2:executed', 'r3:executed:degraded', 'r4:executed']);
      });

      it('audits and records without a decision id are always appended', async () => {
        const { decisionId: _, ...noId } = rec(1);
        await f.writer.append([noId, pause(2)]);
        await f.writer.append([noId, pause(2)]);
        expect((await f.readBack()).map(tag)).to.deep.equal(['r1:executed', 'guard-pause:p2', 'r1:executed', 'guard-pause:p2']);
      });
    });

    if (o.queries) describe('query and trim (stores)', () => {
      const store = (): LedgerStore => {
        if (!f.store) throw new Error(`${adapter}: the fixture has no store`);
        return f.store;
      };

      it('answers by window, rule, node and outcome, newest first, at most limit; audits have no node nor outcome', async () => {
        const all: LedgerEntry[] = [];
        for (let s = 0; s < 60; s++) all.push(s % 10 === 5 ? toggle(s, s % 20 === 5 ? 'containerd-down' : 'gpu-xid-fatal') : rec(s, { outcome: s % 3 === 0 ? 'denied' : 'executed', ...(s % 4 === 0 ? { rule: 'containerd-down' } : {}) }));
        await store().append(all.slice(0, 25));
        await store().append(all.slice(25));
        const newestFirst = (p: (e: LedgerEntry) => boolean): string[] => all.filter(p).reverse().map(tag);
        const isRec = (e: LedgerEntry): e is LedgerRecord => !('kind' in e);
        expect((await store().query({ limit: 1000 })).map(tag)).to.deep.equal(newestFirst(() => true));
        expect((await store().query({ limit: 3 })).map(tag)).to.deep.equal(newestFirst(() => true).slice(0, 3));
        expect((await store().query({ since: T0 + 10_000, until: T0 + 20_000, limit: 100 })).map(tag)).to.deep.equal(newestFirst((e) => e.ts >= at(10) && e.ts < at(20)));
        expect((await store().query({ rule: 'containerd-down', limit: 100 })).map(tag)).to.deep.equal(newestFirst((e) => 'rule' in e && e.rule === 'containerd-down'));
        expect((await store().query({ node: 'gpu-3', limit: 100 })).map(tag)).to.deep.equal(newestFirst((e) => isRec(e) && e.target.name === 'gpu-3'));
        expect((await store().query({ outcome: 'denied', rule: 'gpu-xid-fatal', limit: 100 })).map(tag)).to.deep.equal(newestFirst((e) => isRec(e) && e.outcome === 'denied' && e.rule === 'gpu-xid-fatal'));
        expect((await store().query({ node: 'gpu-3', since: T0 + 30_000, limit: 2 })).map(tag)).to.deep.equal(newestFirst((e) => isRec(e) && e.target.name === 'gpu-3' && e.ts >= at(30)).slice(0, 2));
      });

      it('orders by the entry time, not the append time (a backfill lands in its place)', async () => {
        await store().append([rec(10), rec(30)]);
        await store().append([rec(20), toggle(25)]);
        expect((await store().query({ limit: 10 })).map(tag)).to.deep.equal(['r30:executed', 'rule-toggle:t25', 'r20:executed', 'r10:executed']);
      });

      it('trims to the newest maxLen, and by age of append; says how many went', async () => {
        await store().append(Array.from({ length: 30 }, (_, s) => rec(s)));
        expect(await store().trim(Date.now(), { maxLen: 1000, maxAgeMs: 3_600_000 }), 'nothing beyond the bounds').to.equal(0);
        expect(await store().trim(Date.now(), { maxLen: 20, maxAgeMs: 3_600_000 })).to.equal(10);
        expect((await store().query({ limit: 100 })).map(tag)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `r${29 - i}:executed`));
        expect(await store().trim(Date.now() + 2 * 3_600_000, { maxLen: 1000, maxAgeMs: 3_600_000 }), 'appended more than an hour before now').to.equal(20);
        expect(await store().query({ limit: 100 })).to.deep.equal([]);
      });
    });
  });
}
