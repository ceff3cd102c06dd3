import { expect } from 'chai';
import { computeDeviceTaintView, parseSelector, projectRule, projectSlice, VIEW_LIMITS, type SliceProjection } from '../../../../remediations/kube/device-taint-view.js';

const DRIVER = 'gpu.nvidia.com';
const CFG = { driver: DRIVER, uuidAttribute: 'uuid', pciAttribute: 'pciBusID' };
const uuid = (node: string, i: number): string => `GPU-${node}-000${i}`;

/** A v1/v1beta2 ResourceSlice of `node` with `n` GPUs (pool = node name, NVIDIA's convention). */
function slice(node: string, n: number, o: { gen?: number; count?: number; name?: string; driver?: string; basic?: boolean; taintGpu?: number } = {}): unknown {
  const devices = Array.from({ length: n }, (_, i) => {
    const attributes = { uuid: { string: uuid(node, i) }, pciBusID: { string: `0000:${(0x3b + i).toString(16)}:00.0` }, index: { int: i } };
    const taints = o.taintGpu === i ? [{ key: 'driver.example/unhealthy', effect: 'NoSchedule' }] : [];
    return o.basic ? { name: `gpu-${i}`, basic: { attributes, taints } } : { name: `gpu-${i}`, attributes, taints };
  });
  return {
    apiVersion: 'resource.k8s.io/v1beta2',
    kind: 'ResourceSlice',
    metadata: { name: o.name ?? `${node}-${DRIVER}-${o.gen ?? 1}` },
    spec: { driver: o.driver ?? DRIVER, nodeName: node, pool: { name: node, generation: o.gen ?? 1, resourceSliceCount: o.count ?? 1 }, devices },
  };
}

function rule(name: string, deviceSelector: Record<string, unknown>, effect = 'NoSchedule', labels: Record<string, string> = {}, annotations: Record<string, string> = {}): unknown {
  return { apiVersion: 'resource.k8s.io/v1alpha3', kind: 'DeviceTaintRule', metadata: { name, labels, annotations }, spec: { deviceSelector, taint: { key: 'someone/broken', effect } } };
}

function view(rules: unknown[], slices: unknown[]) {
  const ss = slices.map((s) => projectSlice(s, DRIVER)).filter((s): s is SliceProjection => s !== null);
  return computeDeviceTaintView(rules.map(projectRule), ss, CFG);
}

const cel = (expression: string): Array<{ cel: { expression: string } }> => [{ cel: { expression } }];
const SLICES = [slice('node-a', 8), slice('node-b', 8)];

describe('kube/device-taint-view (GPUs tainted by others; pure)', () => {
  it('driver + pool + device: exactly that GPU, under its UUID, on its node', () => {
    const v = view([rule('r1', { driver: DRIVER, pool: 'node-a', device: 'gpu-3' })], SLICES);
    expect([...v.otherTainted]).to.deep.equal([['node-a', [uuid('node-a', 3)]]]);
    expect(v.unplacedCount).to.equal(0);
  });

  it('driver only: every GPU of the driver in the cluster; pool only: that pool', () => {
    const all = view([rule('r', { driver: DRIVER })], SLICES);
    expect(all.otherTainted.get('node-a')).to.have.length(8);
    expect(all.otherTainted.get('node-b')).to.have.length(8);
    const pool = view([rule('r', { pool: 'node-b' })], SLICES);
    expect([...pool.otherTainted.keys()]).to.deep.equal(['node-b']);
  });

  it("another driver's rule takes no GPU; effect None takes nothing; nodewarden's own rules are not others'", () => {
    const v = view(
      [
        rule('nic', { driver: 'nic.example.com', pool: 'anything', selectors: cel('device.attributes["x"].y.startsWith("z")') }),
        rule('none', { driver: DRIVER }, 'None'),
        rule('ours', { driver: DRIVER, selectors: cel(`device.attributes["${DRIVER}"].uuid == "${uuid('node-a', 1)}"`) }, 'NoSchedule', { 'app.kubernetes.io/managed-by': 'nodewarden' }),
      ],
      SLICES,
    );
    expect(v.otherTainted.size).to.equal(0);
    expect(v.unplacedCount).to.equal(0);
  });

  it('NoExecute counts like NoSchedule', () => {
    expect(view([rule('r', { driver: DRIVER, pool: 'node-a', device: 'gpu-0' }, 'NoExecute')], SLICES).otherTainted.get('node-a')).to.deep.equal([uuid('node-a', 0)]);
  });

  describe('CEL selectors (the supported subset, evaluated exactly)', () => {
    const one = (expr: string) => view([rule('r', { driver: DRIVER, selectors: cel(expr) })], SLICES);
    it("nodewarden's own expression shape, made by someone else", () => {
      const v = one(`"uuid" in device.attributes["${DRIVER}"] && device.attributes["${DRIVER}"].uuid == "${uuid('node-b', 5)}"`);
      expect([...v.otherTainted]).to.deep.equal([['node-b', [uuid('node-b', 5)]]]);
    });
    it('index form, reversed equality, device.driver, several selectors ANDed', () => {
      expect([...one(`"${uuid('node-a', 2)}" == device.attributes["${DRIVER}"]["uuid"]`).otherTainted]).to.deep.equal([['node-a', [uuid('node-a', 2)]]]);
      expect(one(`device.driver == "${DRIVER}"`).otherTainted.get('node-a')).to.have.length(8);
      expect(one('device.driver == "other.example.com"').otherTainted.size).to.equal(0);
      const two = view([rule('r', { driver: DRIVER, selectors: [...cel(`device.driver == "${DRIVER}"`), ...cel(`device.attributes["${DRIVER}"].pciBusID == "0000:3c:00.0"`)] })], SLICES);
      expect(two.otherTainted.get('node-a')).to.deep.equal([uuid('node-a', 1)]);
    });
    it('a missing attribute without an `in` guard is an evaluation error: unplaced (unless another term is false)', () => {
      const v = one(`device.attributes["${DRIVER}"].serial == "x"`);
      expect(v.unplacedCount).to.equal(1);
      expect(v.unplaced[0]?.reason).to.match(/fails on device node-a\/gpu-0/);
      expect(one(`"serial" in device.attributes["${DRIVER}"] && device.attributes["${DRIVER}"].serial == "x"`).unplacedCount).to.equal(0);
      expect(one(`device.driver == "other" && device.attributes["${DRIVER}"].serial == "x"`).unplacedCount).to.equal(0);
      // a non-string attribute compared with a string: an error too
      expect(one(`device.attributes["${DRIVER}"].index == "1"`).unplacedCount).to.equal(1);
    });
    it('outside the subset: unplaced when not bounded by a pool or device; bounded: every device it could select counts', () => {
      const free = one(`device.attributes["${DRIVER}"].uuid.startsWith("GPU-")`);
      expect(free.unplaced).to.deep.equal([{ rule: 'r', reason: 'a CEL selector outside the supported subset, not bounded by a pool or device' }]);
      expect(free.otherTainted.size).to.equal(0);
      const bounded = view([rule('r', { driver: DRIVER, pool: 'node-a', selectors: cel('device.attributes["x"].y > 3') })], SLICES);
      expect(bounded.unplacedCount).to.equal(0);
      expect(bounded.otherTainted.get('node-a')).to.have.length(8);
      expect(bounded.otherTainted.has('node-b')).to.equal(false);
    });
    it('deviceClassName is not evaluated: unplaced unless bounded', () => {
      expect(view([rule('r', { deviceClassName: 'gpu.nvidia.com' })], SLICES).unplaced[0]?.reason).to.match(/deviceClassName gpu.nvidia.com/);
      expect(view([rule('r', { deviceClassName: 'gpu.nvidia.com', pool: 'node-b', device: 'gpu-1' })], SLICES).otherTainted.get('node-b')).to.deep.equal([uuid('node-b', 1)]);
    });
    it('the grammar rejects everything else (||, !, escapes, trailing text, too many terms)', () => {
      for (const e of [
        'true',
        `device.driver == "${DRIVER}" || true`,
        `!(device.driver == "${DRIVER}")`,
        String.raw`device.driver == "a\"b"`,
        `device.driver == "${DRIVER}" && `,
        `device.driver == "${DRIVER}" extra`,
        Array.from({ length: VIEW_LIMITS.terms + 1 }, () => `device.driver == "${DRIVER}"`).join(' && '),
        'x'.repeat(VIEW_LIMITS.expression + 1),
      ])
        expect(parseSelector(e), e.slice(0, 60)).to.equal(null);
      expect(parseSelector(`  "uuid" in device.attributes["d"]&&device.attributes["d"].uuid=="G"  `)).to.deep.equal([
        { kind: 'has', domain: 'd', attr: 'uuid' },
        { kind: 'eq', domain: 'd', attr: 'uuid', value: 'G' },
      ]);
    });
  });

  describe('unknown devices', () => {
    it('a pool the view has no slice of: unplaced', () => {
      const v = view([rule('r', { driver: DRIVER, pool: 'node-z', device: 'gpu-0' })], SLICES);
      expect(v.unplaced).to.deep.equal([{ rule: 'r', reason: `pool node-z of ${DRIVER} is not published in any ResourceSlice` }]);
    });
    it('a device missing from a complete pool selects nothing; from an incomplete pool: unplaced', () => {
      expect(view([rule('r', { driver: DRIVER, pool: 'node-a', device: 'gpu-99' })], SLICES)).to.deep.include({ unplacedCount: 0 });
      const partial = [slice('node-a', 4, { count: 2 })];
      expect(view([rule('r', { driver: DRIVER, pool: 'node-a', device: 'gpu-99' })], partial).unplacedCount).to.equal(1);
      expect(view([rule('r', { driver: DRIVER, device: 'gpu-99' })], partial).unplacedCount).to.equal(1);
      expect(view([rule('r', { driver: DRIVER, device: 'gpu-99' })], SLICES).unplacedCount).to.equal(0);
    });
    it("only the pool's newest generation counts", () => {
      const v = view([rule('r', { driver: DRIVER, pool: 'node-a', device: 'gpu-7' })], [slice('node-a', 8, { gen: 1 }), slice('node-a', 4, { gen: 2 })]);
      expect(v.otherTainted.size).to.equal(0);
    });
  });

  it('v1beta1 slices (fields under `basic`), and devices the driver itself publishes tainted', () => {
    const v = view([], [slice('node-a', 4, { basic: true, taintGpu: 2 }), slice('node-b', 4, { taintGpu: 0 })]);
    expect([...v.otherTainted]).to.deep.equal([
      ['node-a', [uuid('node-a', 2)]],
      ['node-b', [uuid('node-b', 0)]],
    ]);
  });

  it('a GPU tainted by others and by nodewarden (by PCI id) is listed under our id: counted once', () => {
    const own = rule('nodewarden-gpu-x', { driver: DRIVER, pool: 'node-a', selectors: cel('"pciBusID" in device.attributes["gpu.nvidia.com"]') }, 'NoSchedule', { 'app.kubernetes.io/managed-by': 'nodewarden' }, { 'nodewarden.io/node': 'node-a', 'nodewarden.io/gpu': '0000:3d:00' });
    const v = view([own, rule('theirs', { driver: DRIVER, pool: 'node-a', device: 'gpu-2' })], SLICES);
    expect(v.otherTainted.get('node-a')).to.deep.equal(['0000:3d:00']);
  });

  it('devices without a UUID are named by PCI id, else pool/device; devices on no node are no GPU of a node', () => {
    const s = { metadata: { name: 's' }, spec: { driver: DRIVER, nodeName: 'n1', pool: { name: 'p1', generation: 1, resourceSliceCount: 1 }, devices: [{ name: 'd0', attributes: { pciBusID: { string: '00000000:3B:00.0' } } }, { name: 'd1', attributes: {} }] } };
    const all = { metadata: { name: 't' }, spec: { driver: DRIVER, allNodes: true, pool: { name: 'p2', generation: 1, resourceSliceCount: 1 }, devices: [{ name: 'd0', attributes: {} }] } };
    const v = view([rule('r', { driver: DRIVER })], [s, all]);
    expect([...v.otherTainted]).to.deep.equal([['n1', ['0000:3b:00', 'p1/d1']]]);
  });

  it('hostile objects stay bounded: huge device lists, attribute floods, selector floods, junk types', () => {
    const LONG = 'x'.repeat(10_000);
    const devices = Array.from({ length: 1000 }, (_, i) => ({ name: `d${i}`, attributes: Object.fromEntries(Array.from({ length: 100 }, (_, j) => [`a${j}`, { string: LONG }])) }));
    const huge = projectSlice({ metadata: { name: 'h' }, spec: { driver: DRIVER, nodeName: 'n', pool: { name: 'n', generation: 1, resourceSliceCount: 1 }, devices } }, DRIVER);
    expect(huge?.devices).to.have.length(VIEW_LIMITS.devicesPerSlice);
    expect(Object.keys(huge?.devices[0]?.attrs ?? {})).to.have.length(VIEW_LIMITS.attributesPerDevice);
    expect(String(Object.values(huge?.devices[0]?.attrs ?? {})[0]).length).to.equal(VIEW_LIMITS.string);
    const many = projectRule(rule('r', { driver: DRIVER, selectors: Array.from({ length: 1000 }, () => ({ cel: { expression: 'true' } })) }));
    expect(many.selectors).to.equal(null);
    const v = computeDeviceTaintView([many], huge ? [huge] : [], CFG);
    expect(v.unplacedCount).to.equal(1);
    // a driver-wide rule over more devices than any node has GPUs: the per-node list is bounded (the node counts whole anyway)
    const wide = computeDeviceTaintView([projectRule(rule('w', { driver: DRIVER }))], huge ? [huge] : [], { ...CFG, uuidAttribute: 'nope', pciAttribute: null });
    expect(wide.otherTainted.get('n')).to.have.length(Math.min(VIEW_LIMITS.gpusPerNode, VIEW_LIMITS.devicesPerSlice));
    for (const junk of [null, 42, 'x', [], { spec: 'x' }, { spec: { deviceSelector: [], taint: 7 } }, { metadata: { name: 7 } }]) expect(() => projectRule(junk)).not.to.throw();
    for (const junk of [null, 42, { spec: { driver: DRIVER, pool: 'x', devices: 'y' } }, { spec: { driver: DRIVER, pool: { name: 'p' }, devices: [null, 1, { name: {} }] } }]) expect(() => projectSlice(junk, DRIVER)).not.to.throw();
    // unplaced rules are listed up to a bound, counted exactly
    const flood = computeDeviceTaintView(Array.from({ length: 100 }, (_, i) => projectRule(rule(`r${i}`, { pool: `none-${i}` }))), [], CFG);
    expect(flood.unplacedCount).to.equal(100);
    expect(flood.unplaced).to.have.length(VIEW_LIMITS.unplacedListed);
  });
});
