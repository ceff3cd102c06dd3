import { expect } from 'chai';
import { decodeEnvelope, envelopeProblems, parseEnvelope } from '../../../core/envelope.js';
import type { EnvelopeTime } from '../../../core/envelope.js';
import { PoisonInputError } from '../../../core/errors.js';

const good = {
  v: 1,
  id: '01JD7Q8Z3K4M5N6P7Q8R9S0T1V',
  ts: '2026-11-21T10:15:23.456Z',
  node: 'gpu-worker-042',
  type: 'gpu.xid',
  source: 'kmsg',
  labels: { pool: 'h100-train', zone: 'us-west-2c' },
  data: { code: 79, pci: '0000:3b:00', gpu: 'GPU-5f1c', pid: null, process: null, message: 'GPU has fallen off the bus.' },
};

describe('event envelope v1', () => {
  it('accepts the contract example', () => {
    expect(envelopeProblems(good)).to.deep.equal([]);
    expect(parseEnvelope(good).node).to.equal('gpu-worker-042');
  });

  it('lists every problem with its path', () => {
    const bad = { ...good, v: 2, ts: 'yesterday', node: '', type: 'gpu.bogus', labels: { pool: 3 }, data: [] };
    const paths = envelopeProblems(bad).map((p) => p.path);
    expect(paths).to.have.members(['/v', '/ts', '/node', '/type', '/labels/pool', '/data']);
  });

  it('checks the data of each type', () => {
    expect(envelopeProblems({ ...good, data: { code: '79', message: 1 } }).map((p) => p.path)).to.have.members(['/data/code', '/data/message']);
    expect(envelopeProblems({ ...good, type: 'runtime.containerd', data: { state: 'dead' } }).map((p) => p.path)).to.deep.equal(['/data/state']);
    expect(envelopeProblems({ ...good, type: 'net.conntrack', data: { count: 1, max: 2, counters: { drop: 'x' } } }).map((p) => p.path)).to.deep.equal(['/data/counters/drop']);
    expect(envelopeProblems({ ...good, type: 'kubeproxy.restart', data: { pod: 'kube-proxy-x', restartCount: 3 } })).to.deep.equal([]);
  });

  it('turns non-JSON and invalid JSON into a poison error, never a crash', () => {
    expect(() => decodeEnvelope('{not json', 'topic/0@12')).to.throw(PoisonInputError, /topic\/0@12: \/: not JSON/);
    expect(() => decodeEnvelope('null')).to.throw(PoisonInputError, /JSON object/);
    expect(() => decodeEnvelope(JSON.stringify({ ...good, id: '' }))).to.throw(PoisonInputError, /\/id/);
  });

  it("hands back each accepted envelope's time, parsed once by its validation", () => {
    const time: EnvelopeTime = { ms: 0 };
    decodeEnvelope(JSON.stringify(good), 'src', time);
    expect(time.ms).to.equal(Date.parse(good.ts));
    decodeEnvelope(JSON.stringify({ ...good, ts: '2026-11-21T10:15:24.001+01:00' }), 'src', time);
    expect(time.ms).to.equal(Date.parse('2026-11-21T09:15:24.001Z'));
    // a rejected envelope leaves it alone, and does not leak into the next accepted one
    expect(() => decodeEnvelope(JSON.stringify({ ...good, ts: '2026-11-21T10:15:99.000Z' }), 'src', time)).to.throw(PoisonInputError, /\/ts/);
    expect(time.ms).to.equal(Date.parse('2026-11-21T09:15:24.001Z'));
    parseEnvelope({ ...good, id: 'c', ts: '2026-11-21T10:15:25.5Z' }, 'src', time);
    expect(time.ms).to.equal(Date.parse('2026-11-21T10:15:25.500Z'));
  });
});
