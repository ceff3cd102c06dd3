import { expect } from 'chai';
import fc from 'fast-check';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import { gpuCountOf } from '../../../core/gpu.js';
import { BUDGET_EPSILON, cordonCost, fitsBudget, gpuCapFor, nodeWeight, scopeWeight, taintCost } from '../../../remediations/guard/gpu-budget.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { budgetFor, guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { cordon, FakeCluster, taint, untaint } from './fake-cluster.js';

const state = fc.record({ unavailable: fc.boolean(), gpus: fc.option(fc.integer({ min: 0, max: 16 }), { nil: null }), tainted: fc.integer({ min: 0, max: 20 }) });

describe('GPU budget arithmetic', () => {
  it('examples: N of G tainted GPUs count N/G of a node; unknown G counts whole; unavailable counts 1', () => {
    expect(nodeWeight({ unavailable: false, gpus: 8, tainted: 0 })).to.equal(0);
    expect(nodeWeight({ unavailable: false, gpus: 8, tainted: 2 })).to.equal(0.25);
    expect(nodeWeight({ unavailable: false, gpus: 8, tainted: 9 })).to.equal(1);
    expect(nodeWeight({ unavailable: false, gpus: null, tainted: 1 })).to.equal(1);
    expect(nodeWeight({ unavailable: true, gpus: 8, tainted: 0 })).to.equal(1);
    expect(taintCost({ unavailable: false, gpus: 8, tainted: 2 }, false)).to.equal(0.125);
    expect(taintCost({ unavailable: false, gpus: 8, tainted: 2 }, true)).to.equal(0);
    expect(cordonCost({ unavailable: false, gpus: 8, tainted: 6 })).to.equal(0.25);
    // 1/3 + 1/3 + 1/3 fits a limit of 1 despite rounding
    expect(fitsBudget(1 / 3 + 1 / 3, 1 / 3, 1)).to.equal(true);
    expect(fitsBudget(1, 1 / 8, 1)).to.equal(false);
    expect(gpuCapFor('50%', 8)).to.equal(4);
    expect(gpuCapFor('50%', 1)).to.equal(1);
    expect(gpuCapFor('50%', null)).to.equal(1);
    expect(gpuCapFor('0%', 8)).to.equal(0);
    expect(gpuCapFor('3', 8)).to.equal(3);
  });

  it('GPUs per node from capacity nvidia.com/gpu, else the count label; junk is unknown', () => {
    expect(gpuCountOf({ 'nvidia.com/gpu': '8' }, { 'nvidia.com/gpu.count': '4' }, 'nvidia.com/gpu.count')).to.equal(8);
    expect(gpuCountOf({ cpu: '96' }, { 'nvidia.com/gpu.count': '4' }, 'nvidia.com/gpu.count')).to.equal(4);
    expect(gpuCountOf({ 'nvidia.com/gpu': '0' }, {}, 'nvidia.com/gpu.count')).to.equal(null);
    expect(gpuCountOf(undefined, { 'nvidia.com/gpu.count': '8x' }, 'nvidia.com/gpu.count')).to.equal(null);
    expect(gpuCountOf(undefined, { 'nvidia.com/gpu.count': '1e3' }, 'nvidia.com/gpu.count')).to.equal(null);
  });

  it('property: a weight is in [0, 1], never decreases with more tainted GPUs, and a cordon costs exactly the rest of the node', () => {
    fc.assert(
      fc.property(state, (s) => {
        const w = nodeWeight(s);
        expect(w).to.be.within(0, 1);
        expect(nodeWeight({ ...s, tainted: s.tainted + 1 })).to.be.at.least(w);
        expect(cordonCost(s) + w).to.be.closeTo(1, BUDGET_EPSILON);
        expect(taintCost(s, false)).to.be.within(0, 1);
      }),
      { seed: 0x6b0d_0001, numRuns: 2000 },
    );
  });

  it('property: tainting every GPU of a node one by one costs exactly one node, in any budget arithmetic order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), (gpus) => {
        let total = 0;
        for (let t = 0; t < gpus; t++) total += taintCost({ unavailable: false, gpus, tainted: t }, false);
        expect(total).to.be.closeTo(1, BUDGET_EPSILON);
        expect(fitsBudget(total - 1, 1, 1)).to.equal(true);
      }),
      { seed: 0x6b0d_0002, numRuns: 500 },
    );
  });

  it('property: the per-node cap is within [0, gpus] (1 for a non-zero % of an unknown count) and monotone in the percentage', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), fc.option(fc.integer({ min: 1, max: 64 }), { nil: null }), (a, b, gpus) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const capLo = gpuCapFor(`${lo}%`, gpus);
        const capHi = gpuCapFor(`${hi}%`, gpus);
        expect(capLo).to.be.at.most(capHi);
        expect(capHi).to.be.at.most(gpus ?? 1);
        if (lo > 0) expect(capLo).to.be.at.least(1);
      }),
      { seed: 0x6b0d_0003, numRuns: 1000 },
    );
  });

  /**
   * The guard end to end: any sequence of taints, untaints and cordons over a
   * small fleet of mixed GPU counts, through the memory guard, never leaves
   * more than maxUnavailable nodes' worth of capacity out (counted by a model
   * of what was allowed), and never more than the cap of GPUs on one node.
   */
  it('property: no sequence of taint/untaint/cordon decisions the guard allows exceeds the budget or the per-node cap', async () => {
    const op = fc.record({
      kind: fc.constantFrom('taint', 'taint', 'taint', 'untaint', 'cordon'),
      node: fc.integer({ min: 0, max: 9 }),
      gpu: fc.integer({ min: 0, max: 7 }),
      advanceMs: fc.constantFrom(0, 0, 1000, 10 * 60_000),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.constantFrom('10%', '20%', '2', '3'),
        fc.constantFrom('25%', '50%', '100%', '2'),
        async (ops, maxUnavailable, cap) => {
          const clock = new ManualClock(Date.parse('2026-12-02T10:00:00Z'));
          const view = FakeCluster.fleet(10, ['a']);
          const gpusOf = (i: number): number | null => [8, 8, 4, 2, null][i % 5] ?? null;
          for (let i = 0; i < 10; i++) {
            const n = view.nodes.get(`gpu-00${i}`);
            if (n) n.gpus = gpusOf(i);
          }
          const options = guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailable, maxUnavailablePerGroup: '100%', maxTaintedGpusPerNode: cap, targetCooldownMs: 0, rateLimits: {} });
          const guard = createMemoryGuard({ view, options, clock });
          const limit = budgetFor(maxUnavailable, 10);
          const tainted = new Map<string, Set<string>>();
          const cordoned = new Set<string>();
          for (const o of ops) {
            clock.advance(o.advanceMs);
            const node = `gpu-00${o.node}`;
            const gpu = `GPU-${o.gpu}`;
            const d = o.kind === 'taint' ? taint(node, gpu) : o.kind === 'untaint' ? untaint(node, gpu) : cordon(node);
            const v = await guard.authorize(d);
            if (!v.allowed) continue;
            await guard.settle(d, v, { ok: true });
            if (o.kind === 'cordon') {
              cordoned.add(node);
              view.cordon(node, true); // the view catches up with the executed cordon
            } else {
              const set = tainted.get(node) ?? new Set<string>();
              if (o.kind === 'taint') set.add(gpu);
              else set.delete(gpu);
              tainted.set(node, set);
            }
            const used = scopeWeight([...view.nodes.values()].map((n) => ({ unavailable: cordoned.has(n.name), gpus: n.gpus ?? null, tainted: tainted.get(n.name)?.size ?? 0 })));
            expect(used, `after ${o.kind} ${node}/${gpu}`).to.be.at.most(limit + BUDGET_EPSILON);
            if (o.kind === 'taint' && !cordoned.has(node)) expect(tainted.get(node)?.size ?? 0).to.be.at.most(gpuCapFor(cap, gpusOf(o.node)));
          }
        },
      ),
      { seed: 0x6b0d_0004, numRuns: 300 },
    );
  });
});
