import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { gpuOf } from '../../../core/gpu.js';
import { CORDON_ONLY, createDeviceIsolation } from '../../../remediations/device-isolation.js';
import { buildDeviceTaintRule, deviceSelectorFor, deviceTaintRuleName, labelValue } from '../../../remediations/kube/device-taint-rules.js';
import { DeviceTaintDiscovery, type DeviceTaintApi } from '../../../remediations/kube/device-taints.js';

const CFG = DEFAULT_CONFIG.deviceTaints;
const UUID = 'GPU-5f1c0b7e-1b2c-4d5e-8f90-123456789abc';
const taint = (gpu: string, node = 'gpu-worker-042'): Decision => ({ id: 'd-1', at: 0, rule: 'gpu-xid-fatal', action: 'taint', target: { kind: 'Device', name: gpu, node }, reason: 'Xid 48' });

function fakeApi(served: string | null): DeviceTaintApi & { discovers: number } {
  const api = {
    discovers: 0,
    discover() {
      api.discovers++;
      return Promise.resolve(served);
    },
    create: () => Promise.reject(new Error('unused')),
    get: () => Promise.reject(new Error('unused')),
    delete: () => Promise.reject(new Error('unused')),
  };
  return api;
}

describe('per-GPU scope: GPU ids, DeviceTaintRules, cordon fallback', () => {
  it('events: data.gpu / data.pci are optional, bounded and validated (older events stay valid)', () => {
    const ev = (data: Record<string, unknown>) => ({ v: 1, id: 'e', ts: '2026-12-02T10:00:00.000Z', node: 'n', type: 'gpu.xid', source: 'kmsg', labels: {}, data: { code: 48, message: 'm', ...data } });
    expect(envelopeProblems(ev({ pci: '0000:3b:00', gpu: UUID }))).to.deep.equal([]);
    expect(envelopeProblems(ev({ pci: null }))).to.deep.equal([]);
    expect(envelopeProblems(ev({}))).to.deep.equal([]);
    expect(envelopeProblems(ev({ gpu: 'GPU-aaa' }))).to.deep.equal([]);
    expect(envelopeProblems(ev({ pci: 'x'.repeat(100) })).map((p) => p.path)).to.deep.equal(['/data/pci']);
    expect(envelopeProblems(ev({ gpu: 'GPU-"}; drop' })).map((p) => p.path)).to.deep.equal(['/data/gpu']);
    expect(envelopeProblems(ev({ gpu: 'G'.repeat(200) })).map((p) => p.path)).to.deep.equal(['/data/gpu']);
    expect(envelopeProblems({ ...ev({}), type: 'gpu.health', data: { gpu: 7 } }).map((p) => p.path)).to.deep.equal(['/data/gpu']);
    expect(gpuOf({ gpu: UUID, pci: '0000:3b:00' })).to.equal(UUID);
    expect(gpuOf({ gpu: null, pci: '0000:3B:00' })).to.equal('0000:3b:00');
    expect(gpuOf({ gpu: 'gpu:3' })).to.equal(null);
  });

  it('a DeviceTaintRule selects the GPU by driver + uuid attribute; a PCI id also by its node\'s pool', () => {
    const r = buildDeviceTaintRule(taint(UUID), 'resource.k8s.io/v1alpha3', 'NoSchedule', CFG, Date.parse('2026-12-02T10:00:00Z'));
    expect(r?.metadata?.name).to.equal(deviceTaintRuleName({ node: 'gpu-worker-042', gpu: UUID }));
    expect(r?.spec?.taint).to.deep.equal({ key: 'nodewarden.io/unhealthy', value: 'gpu-xid-fatal', effect: 'NoSchedule' });
    expect(r?.spec?.deviceSelector).to.deep.equal({ driver: 'gpu.nvidia.com', selectors: [{ cel: { expression: `"uuid" in device.attributes["gpu.nvidia.com"] && device.attributes["gpu.nvidia.com"].uuid == "${UUID}"` } }] });
    expect(deviceSelectorFor({ node: 'n1', gpu: '0002:3b:00' }, CFG)?.pool).to.equal('n1');
    expect(deviceSelectorFor({ node: 'n1', gpu: '0000:3b:00' }, { ...CFG, pciAttribute: null })).to.equal(null);
    expect(deviceSelectorFor({ node: 'n1', gpu: 'gpu:3' }, CFG)).to.equal(null);
    expect(labelValue('0000:3b:00')).to.match(/^0000_3b_00-[0-9a-f]{8}$/);
    expect(labelValue('n'.repeat(80))).to.have.length.at.most(63);
    expect(deviceTaintRuleName({ node: 'N'.repeat(300), gpu: UUID })).to.have.length.at.most(253).and.match(/^[a-z0-9-]+$/);
  });

  it('routes a GPU taint to the node cordon when the API is not served, device taints are off, or the GPU cannot be selected', async () => {
    const clock = new ManualClock(0);
    const served = createDeviceIsolation({ config: CFG, discovery: new DeviceTaintDiscovery({ api: fakeApi('resource.k8s.io/v1alpha3'), clock, ttlMs: 60_000 }) });
    expect((await served.route(taint(UUID))).action).to.equal('taint');
    const gone = await createDeviceIsolation({ config: CFG, discovery: new DeviceTaintDiscovery({ api: fakeApi(null), clock, ttlMs: 60_000 }) }).route(taint(UUID));
    expect(gone).to.deep.include({ id: 'd-1-node', action: 'cordon', target: { kind: 'Node', name: 'gpu-worker-042' } });
    expect(gone.reason).to.equal('Xid 48 (GPU GPU-5f1c0b7e-1b2c-4d5e-8f90-123456789abc: DeviceTaintRule is not served by this cluster; cordoning the node)');
    expect((await createDeviceIsolation({ config: { ...CFG, enabled: false }, discovery: null }).route(taint(UUID))).action).to.equal('cordon');
    expect((await served.route(taint('gpu:3'))).action).to.equal('cordon');
    expect((await CORDON_ONLY.route(taint(UUID))).action).to.equal('cordon');
    const page: Decision = { ...taint(UUID), action: 'page', target: { kind: 'Node', name: 'n' } };
    expect(await served.route(page)).to.equal(page);
  });

  it('discovery is cached for its TTL, then asked again', async () => {
    const clock = new ManualClock(0);
    const api = fakeApi('resource.k8s.io/v1alpha3');
    const d = new DeviceTaintDiscovery({ api, clock, ttlMs: 60_000 });
    await Promise.all([d.apiVersion(), d.apiVersion()]);
    await d.apiVersion();
    expect(api.discovers).to.equal(1);
    clock.advance(60_001);
    await d.apiVersion();
    expect(api.discovers).to.equal(2);
  });
});
