import { expect } from 'chai';
import { NW } from '../../../../core/cluster.js';
import { isCordonedByNodewarden, nodeInfoOf, planCordon, planUncordon } from '../../../../remediations/kube/node-decisions.js';
import { applyMergePatch } from '../../../../remediations/simulated/patch.js';
import type { WireNode } from '../../../../remediations/kube/wire.js';
import { decision, node } from './helpers.js';

const NOW = Date.parse('2026-11-21T10:15:24.001Z');
const nwAnn = (id = 'dec-1'): Record<string, string> => ({ [NW.annCordonedBy]: 'nodewarden', [NW.annDecision]: id, [NW.annRule]: 'r' });
const nwTaint = { key: NW.taintKey, value: 'true', effect: 'NoSchedule' };

describe('kube/node-decisions', () => {
  describe('planCordon', () => {
    it('cordons a schedulable node: unschedulable, taint, every annotation, resourceVersion precondition', () => {
      const n = node('n1', { taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] });
      const plan = planCordon(n, decision(), NOW);
      expect(plan.type).to.equal('patch');
      if (plan.type !== 'patch') return;
      const after = applyMergePatch(n, plan.patch) as WireNode;
      expect(after.spec?.unschedulable).to.equal(true);
      expect(after.spec?.taints).to.deep.equal([{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }, nwTaint]);
      expect(after.metadata?.annotations).to.deep.equal({
        [NW.annCordonedBy]: 'nodewarden',
        [NW.annRule]: 'gpu-xid-fatal',
        [NW.annReason]: 'Xid 79 (GPU has fallen off the bus) on gpu-node-001',
        [NW.annTime]: '2026-11-21T10:15:24.001Z',
        [NW.annDecision]: 'dec-1',
      });
      expect((plan.patch.metadata as Record<string, unknown>).resourceVersion).to.equal('100');
      expect(isCordonedByNodewarden(after)).to.equal(true);
    });

    it('is idempotent for the same decision and for another nodewarden decision', () => {
      const n = node('n1', { unschedulable: true, annotations: nwAnn(), taints: [nwTaint] });
      const same = planCordon(n, decision(), NOW);
      expect(same).to.deep.include({ type: 'noop', owned: true });
      expect(same.detail).to.match(/this decision/);
      const other = planCordon(n, decision({ id: 'dec-2' }), NOW);
      expect(other).to.deep.include({ type: 'noop', owned: true });
      expect(other.detail).to.match(/decision dec-1/);
    });

    it('never takes ownership of a node someone else cordoned', () => {
      const n = node('n1', { unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] });
      const plan = planCordon(n, decision(), NOW);
      expect(plan).to.deep.include({ type: 'noop', owned: false });
      expect(plan.detail).to.match(/someone else/);
    });

    it('restores a missing taint on its own cordon without rewriting the attribution', () => {
      const n = node('n1', { unschedulable: true, annotations: nwAnn('first') });
      const plan = planCordon(n, decision({ id: 'second' }), NOW);
      expect(plan.type).to.equal('patch');
      if (plan.type !== 'patch') return;
      const after = applyMergePatch(n, plan.patch) as WireNode;
      expect(after.spec?.taints).to.deep.equal([nwTaint]);
      expect(after.metadata?.annotations?.[NW.annDecision]).to.equal('first');
    });

    it('re-cordons (fresh annotations) a node whose stale nodewarden annotation outlived a human uncordon', () => {
      const n = node('n1', { unschedulable: false, annotations: nwAnn('old') });
      const plan = planCordon(n, decision({ id: 'new' }), NOW);
      if (plan.type !== 'patch') throw new Error('expected a patch');
      const after = applyMergePatch(n, plan.patch) as WireNode;
      expect(after.spec?.unschedulable).to.equal(true);
      expect(after.metadata?.annotations?.[NW.annDecision]).to.equal('new');
    });
  });

  describe('planUncordon', () => {
    it('uncordons a node nodewarden cordoned: removes taint, annotations, unschedulable', () => {
      const n = node('n1', { unschedulable: true, annotations: { ...nwAnn(), other: 'keep' }, taints: [{ key: 'x', effect: 'NoExecute' }, nwTaint] });
      const plan = planUncordon(n, decision({ action: 'uncordon' }));
      if (plan.type !== 'patch') throw new Error('expected a patch');
      const after = applyMergePatch(n, plan.patch) as WireNode;
      expect(after.spec?.unschedulable).to.equal(undefined);
      expect(after.spec?.taints).to.deep.equal([{ key: 'x', effect: 'NoExecute' }]);
      expect(after.metadata?.annotations).to.deep.equal({ other: 'keep' });
      expect(nodeInfoOf(after)).to.deep.include({ unschedulable: false, cordonedByNodewarden: false });
    });

    it('refuses a human-cordoned node', () => {
      const plan = planUncordon(node('n1', { unschedulable: true }), decision({ action: 'uncordon' }));
      expect(plan.type).to.equal('refuse');
      expect(plan.detail).to.match(/someone else/);
    });

    it('refuses when managedFields show a human set unschedulable after nodewarden (stale annotation)', () => {
      const n = node('n1', {
        unschedulable: true,
        annotations: nwAnn(),
        taints: [nwTaint],
        managedFields: [
          { manager: 'nodewarden', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': {} } } },
          { manager: 'kubectl-cordon', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:unschedulable': {} } } },
        ],
      });
      expect(isCordonedByNodewarden(n)).to.equal(false);
      const plan = planUncordon(n, decision({ action: 'uncordon' }));
      expect(plan.type).to.equal('refuse');
      expect(plan.detail).to.match(/kubectl-cordon/);
    });

    it('accepts managedFields naming nodewarden as the writer of unschedulable', () => {
      const n = node('n1', {
        unschedulable: true,
        annotations: nwAnn(),
        managedFields: [{ manager: 'nodewarden', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:unschedulable': {}, 'f:taints': {} } } }],
      });
      expect(planUncordon(n, decision({ action: 'uncordon' })).type).to.equal('patch');
    });

    it('is a no-op on a schedulable node nodewarden never touched', () => {
      expect(planUncordon(node('n1'), decision({ action: 'uncordon' })).type).to.equal('noop');
    });
  });

  it('nodeInfoOf reads Ready, unschedulable and ownership', () => {
    expect(nodeInfoOf(node('n1', { ready: false }))).to.deep.include({ name: 'n1', ready: false, unschedulable: false, cordonedByNodewarden: false });
    expect(nodeInfoOf(node('n2', { unschedulable: true, annotations: nwAnn() }))).to.deep.include({ unschedulable: true, cordonedByNodewarden: true });
  });
});
