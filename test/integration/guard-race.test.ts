/**
 * Acceptance: 8 engine replicas (separate processes, separate ioredis
 * connections) race on a REAL Redis over randomized storms (fast-check). The
 * guard must never let unavailable nodes exceed the budget (fleet and per
 * group), never execute one decision twice, never exceed a rate limit.
 * Runs: $NODEWARDEN_RACE_RUNS (default 1000 storms).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { budgetFor } from '../../remediations/guard/policy.js';
import type { Decision } from '../../core/decision.js';
import { sharedRedis } from './servers.js';
import type { FromWorker, StormSpec, ToWorker } from './guard-race-worker.js';
import { nodeName, poolOf, stormKeys } from './guard-race-worker.js';

const WORKERS = 8;
const RUNS = Number(process.env.NODEWARDEN_RACE_RUNS ?? 1000);

interface Storm {
  spec: Omit<StormSpec, 'prefix'>;
  /** Node indices unavailable before the storm (cordoned by people, NotReady). */
  preUnavailable: number[];
  /** Decisions: node index, action, and which workers receive it (duplicates race). */
  decisions: Array<{ node: number; action: 'cordon' | 'page'; workers: number[]; resubmit: boolean }>;
}

const stormArb: fc.Arbitrary<Storm> = fc
  .record({
    nodes: fc.integer({ min: 10, max: 120 }),
    pools: fc.integer({ min: 1, max: 4 }),
    maxUnavailable: fc.oneof(fc.constantFrom('5%', '10%', '25%'), fc.integer({ min: 0, max: 8 }).map(String)),
    maxUnavailablePerGroup: fc.oneof(fc.constantFrom('10%', '20%', '50%', '100%'), fc.integer({ min: 0, max: 5 }).map(String)),
    cordonRate: fc.integer({ min: 1, max: 12 }),
    pageRate: fc.integer({ min: 1, max: 6 }),
    failRate: fc.constantFrom(0, 0, 0.1, 0.3),
  })
  .chain((spec) =>
    fc.record({
      spec: fc.constant(spec),
      preUnavailable: fc.uniqueArray(fc.integer({ min: 0, max: spec.nodes - 1 }), { maxLength: 8 }),
      decisions: fc.array(
        fc.record({
          node: fc.integer({ min: 0, max: spec.nodes - 1 }),
          action: fc.constantFrom<'cordon' | 'page'>('cordon', 'cordon', 'cordon', 'page'),
          workers: fc.uniqueArray(fc.integer({ min: 0, max: WORKERS - 1 }), { minLength: 1, maxLength: 3 }),
          resubmit: fc.boolean(),
        }),
        { minLength: 5, maxLength: 60 },
      ),
    }),
  );

describe('guard race: 8 replicas on real Redis (property)', function () {
  this.timeout(30 * 60_000);
  let url = '';
  let redis: Redis;
  const workers: ChildProcess[] = [];
  const waiting = new Map<number, (m: FromWorker) => void>();

  before(async function () {
    this.timeout(120_000);
    url = (await sharedRedis()).url;
    redis = new Redis(url);
    const script = fileURLToPath(new URL('./guard-race-worker.js', import.meta.url));
    await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => {
        const w = fork(script, [url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        workers.push(w);
        return new Promise<void>((resolve, reject) => {
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`race worker ${i} exited early (${code})`)));
          w.on('message', (m: FromWorker) => {
            if (m.type === 'ready') resolve();
            else waiting.get(i)?.(m);
          });
        });
      }),
    );
  });

  after(async () => {
    for (const w of workers) {
      w.removeAllListeners('exit');
      w.send({ type: 'exit' } satisfies ToWorker);
    }
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
    await redis?.quit();
  });

  function runOn(i: number, msg: ToWorker): Promise<FromWorker> {
    return new Promise((resolve) => {
      waiting.set(i, resolve);
      workers[i]!.send(msg);
    });
  }

  it(`never exceeds the budget, never acts twice, never exceeds a rate limit (${RUNS} storms)`, async () => {
    let seq = 0;
    const totals = { storms: 0, decisions: 0, cordons: 0, denied: 0 };
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(stormArb, async (s) => {
        const prefix = `race${process.pid}:${++seq}:`;
        const spec: StormSpec = { ...s.spec, prefix };
        const k = stormKeys(prefix);
        const pre = s.preUnavailable.map(nodeName);
        if (pre.length > 0) await redis.sadd(k.unavailable, ...pre);
        // decision ids: stable per (storm, index) so duplicates across workers share the id
        const perWorker: Decision[][] = Array.from({ length: WORKERS }, () => []);
        s.decisions.forEach((d, idx) => {
          const name = nodeName(d.node);
          const dec: Decision = {
            id: `${prefix}${idx}`,
            at: Date.now(),
            rule: 'gpu-xid-fatal',
            action: d.action,
            target: { kind: 'Node', name },
            reason: `Xid 79 on ${name}`,
            severity: 'critical',
            group: { pool: poolOf(d.node, s.spec.pools) },
            ...(d.action === 'page' ? { dedupKey: `gpu-xid-fatal:${name}` } : {}),
          };
          for (const w of d.workers) {
            perWorker[w]!.push(dec);
            if (d.resubmit) perWorker[w]!.push(dec); // a redelivery after a "crash"
          }
        });
        const replies = await Promise.all(perWorker.map((decisions, i) => runOn(i, { type: 'storm', storm: spec, decisions })));
        for (const r of replies) if (r.type === 'done' && r.error) throw new Error(`worker: ${r.error}`);

        // --- invariants
        const after = new Set(await redis.smembers(k.unavailable));
        const idxOf = (n: string): number => Number(n.slice(4));
        const fleetLimit = budgetFor(spec.maxUnavailable, spec.nodes);
        expect(after.size, 'fleet budget').to.be.at.most(Math.max(fleetLimit, pre.length));
        for (let p = 0; p < spec.pools; p++) {
          const members = Array.from({ length: spec.nodes }, (_, i) => i).filter((i) => poolOf(i, spec.pools) === `p${p}`);
          const limit = budgetFor(spec.maxUnavailablePerGroup, members.length);
          const before = pre.filter((n) => poolOf(idxOf(n), spec.pools) === `p${p}`).length;
          const now = [...after].filter((n) => poolOf(idxOf(n), spec.pools) === `p${p}`).length;
          expect(now, `group p${p} budget`).to.be.at.most(Math.max(limit, before));
        }
        const counts = await redis.hgetall(k.execCount);
        for (const [id, c] of Object.entries(counts)) expect(Number(c), `executions of ${id}`).to.equal(1);
        const log = (await redis.lrange(k.log, 0, -1)).map((l) => JSON.parse(l) as { action: string });
        const cordons = log.filter((l) => l.action === 'cordon').length;
        expect(cordons, 'cordon rate limit').to.be.at.most(spec.cordonRate);
        expect(log.filter((l) => l.action === 'page').length, 'page rate limit').to.be.at.most(spec.pageRate);

        totals.storms++;
        totals.decisions += s.decisions.length;
        totals.cordons += cordons;
        await redis.del(k.unavailable, k.execCount, k.log);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    console.log(`      ${totals.storms} storms, ${totals.decisions} decisions (×1-3 workers, some redelivered), ${totals.cordons} cordons executed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
