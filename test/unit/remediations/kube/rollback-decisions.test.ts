import { expect } from 'chai';
import {
  NW_ROLLBACK,
  pickDaemonSetRevision,
  pickDeploymentRevision,
  planDaemonSetRollback,
  planDeploymentRollback,
} from '../../../../remediations/kube/rollback-decisions.js';
import type { WireDeployment } from '../../../../remediations/kube/wire.js';
import { applyJsonPatch, applyMergePatch } from '../../../../remediations/simulated/patch.js';
import { controllerRevision, daemonSet, decision, deployment, replicaSet } from './helpers.js';

const NOW = Date.parse('2026-11-21T10:20:00Z');
const rollback = (over: Parameters<typeof decision>[0] = {}): ReturnType<typeof decision> =>
  decision({ action: 'rollback', rule: 'driver-rollout-xids', target: { kind: 'Deployment', namespace: 'apps', name: 'web' }, ...over });

describe('kube/rollback-decisions', () => {
  describe('Deployment (kubectl rollout undo semantics)', () => {
    const rs1 = replicaSet('web:v1', 1, 'aaa', { annotations: { 'team.example/owner': 'ml', 'deployment.kubernetes.io/desired-replicas': '3' } });
    const rs2 = replicaSet('web:v2', 2, 'bbb');
    const rs3 = replicaSet('web:v3', 3, 'ccc');

    it('picks the second-highest revision regardless of list order, and ignores ReplicaSets of other Deployments', () => {
      const foreign = replicaSet('other:v9', 9, 'zzz', { owner: 'other' });
      const p = pickDeploymentRevision(deployment('web:v3', 3), [rs3, foreign, rs1, rs2], undefined);
      expect(p).to.include({ revision: 2, current: 3 });
    });

    it('picks exactly toRevision when asked, and reports a missing one', () => {
      expect(pickDeploymentRevision(deployment('web:v3', 3), [rs1, rs2, rs3], 1)).to.include({ revision: 1 });
      expect(pickDeploymentRevision(deployment('web:v3', 3), [rs1, rs2, rs3], 7)).to.have.property('error').that.match(/revision 7 not found/);
    });

    it('patches template (minus pod-template-hash) and annotations the way kubectl does', () => {
      const d = deployment('web:v2', 2, { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'deployment.kubernetes.io/revision-history': '' } });
      const plan = planDeploymentRollback(d, [rs1, rs2], rollback(), NOW);
      if (plan.type !== 'patch') throw new Error(`expected patch, got ${plan.type}: ${plan.detail}`);
      expect(plan.toRevision).to.equal(1);
      expect(plan.fromRevision).to.equal(2);
      expect(plan.patch[0]).to.deep.equal({ op: 'replace', path: '/metadata/resourceVersion', value: '500' });
      const after = applyJsonPatch<WireDeployment>(d, plan.patch);
      expect(after.spec?.template).to.deep.equal({ metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'web:v1' }] } });
      const ann = after.metadata?.annotations ?? {};
      // kept from the Deployment (annotationsToSkip), copied from the ReplicaSet otherwise
      expect(ann['deployment.kubernetes.io/revision']).to.equal('2');
      expect(ann['kubectl.kubernetes.io/last-applied-configuration']).to.equal('{}');
      expect(ann['deployment.kubernetes.io/desired-replicas']).to.equal(undefined);
      expect(ann['team.example/owner']).to.equal('ml');
      expect(ann[NW_ROLLBACK.annDecision]).to.equal('dec-1');
      expect(ann[NW_ROLLBACK.annToRevision]).to.equal('1');
    });

    it('refuses when there is no previous revision', () => {
      const plan = planDeploymentRollback(deployment('web:v1', 1), [rs1], rollback(), NOW);
      expect(plan).to.deep.include({ type: 'refuse', code: 'NOT_FOUND' });
      expect(plan.detail).to.match(/no previous revision/);
    });

    it('refuses a paused Deployment', () => {
      expect(planDeploymentRollback(deployment('web:v2', 2, { paused: true }), [rs1, rs2], rollback(), NOW)).to.deep.include({ type: 'refuse', code: 'CONFLICT' });
    });

    it('skips when the template already matches the target revision', () => {
      const plan = planDeploymentRollback(deployment('web:v1', 2), [rs1, rs2], rollback({ params: { toRevision: 1 } }), NOW);
      expect(plan).to.deep.include({ type: 'noop', toRevision: 1 });
    });

    it('a replayed decision sees its own rollback and does not flip back', () => {
      const d = deployment('web:v1', 3, { annotations: { [NW_ROLLBACK.annDecision]: 'dec-1', [NW_ROLLBACK.annToRevision]: '1' } });
      expect(planDeploymentRollback(d, [replicaSet('web:v1', 3, 'aaa'), rs2], rollback(), NOW)).to.deep.include({ type: 'noop', toRevision: 1 });
    });

    it('rejects a malformed toRevision', () => {
      expect(planDeploymentRollback(deployment('web:v2', 2), [rs1, rs2], rollback({ params: { toRevision: 1.5 } }), NOW)).to.deep.include({ type: 'refuse', code: 'REQUEST_INVALID' });
    });
  });

  describe('DaemonSet (ControllerRevisions)', () => {
    const cr1 = controllerRevision('driver:550.90', 1, '2026-10-22T00:00:00Z');
    const cr2 = controllerRevision('driver:550.127', 2);
    const ds = daemonSet('driver:550.127');
    const dsDecision = rollback({ target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'driver' } });

    it('picks the previous revision by .revision, not by list order', () => {
      expect(pickDaemonSetRevision(ds, [cr2, cr1], undefined)).to.include({ revision: 1, current: 2 });
    });

    it('patches the DaemonSet with the revision data ($patch: replace) plus precondition and annotations', () => {
      const plan = planDaemonSetRollback(ds, [cr1, cr2], dsDecision, NOW);
      if (plan.type !== 'patch') throw new Error(`expected patch: ${plan.detail}`);
      expect(plan.toRevision).to.equal(1);
      expect((plan.patch.spec as { template: { $patch: string } }).template.$patch).to.equal('replace');
      expect(plan.patch.metadata).to.deep.include({ resourceVersion: '700' });
      const after = applyMergePatch(ds, plan.patch) as typeof ds;
      expect(after.spec?.template).to.deep.equal({ metadata: { labels: { app: 'driver' } }, spec: { containers: [{ name: 'd', image: 'driver:550.90' }] } });
    });

    it('refuses with a single revision, and skips when already at the target', () => {
      expect(planDaemonSetRollback(ds, [cr2], dsDecision, NOW)).to.deep.include({ type: 'refuse', code: 'NOT_FOUND' });
      expect(planDaemonSetRollback(daemonSet('driver:550.90'), [cr1, cr2], dsDecision, NOW).type).to.equal('noop');
    });
  });
});
