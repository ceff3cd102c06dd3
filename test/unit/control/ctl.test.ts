import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import type { EngineHttpServer } from '../../../control/server.js';
import { renderGuard, renderLedger, renderRules, span, table } from '../../../control/render.js';
import { run } from '../../../cli/commands/ctl.js';
import { freePort } from '../../harness/ports.js';
import { startControlServer } from '../../harness/control-server.js';
import { fakeBackend } from './fake-backend.js';

const ADMIN = 'adm1n-t0ken-0123456789abcdef';
const READER = 'read0nly-t0ken-0123456789abcd';
const T0 = Date.parse('2026-11-21T10:00:00.000Z');

describe('ctl: rendering', () => {
  it('aligns columns like kubectl', () => {
    expect(table(['ID', 'STATE'], [['a-long-id', 'on'], ['b', 'off']])).to.equal('ID          STATE\na-long-id   on\nb           off\n');
  });

  it('renders rules, guard and ledger tables', () => {
    const rules = renderRules(
      [
        { id: 'gpu-xid-fatal', description: '', severity: 'critical', source: 'f', fileEnabled: true, toggle: { rule: 'gpu-xid-fatal', enabled: false, reason: 'fw rollout', by: 'alice', at: T0, expiresAt: T0 + 3_600_000 }, effective: false },
        { id: 'conntrack-full', description: '', severity: 'warning', source: 'f', fileEnabled: true, toggle: null, effective: true },
      ],
      T0,
    );
    expect(rules).to.equal(
      [
        'ID               FILE      RUNTIME    EFFECTIVE   EXPIRES   BY      REASON',
        'gpu-xid-fatal    enabled   disabled   disabled    1h        alice   fw rollout',
        'conntrack-full   enabled   -          enabled     -         -',
        '',
      ].join('\n'),
    );
    const guard = renderGuard(
      {
        at: T0,
        paused: { reason: 'incident', by: 'bob', at: T0 - 120_000 },
        fleet: { scope: 'fleet', total: 1000, unavailable: 12, reserved: 1, gpuWeight: 0, limit: 50 },
        groups: [],
        gpus: [],
        rateLimits: [{ action: 'cordon', limit: 10, windowMs: 600_000, used: 4, remaining: 6 }],
        breakers: [],
      },
      T0,
    );
    expect(guard).to.equal(
      ['PAUSED by bob 2m ago: incident', '', 'SCOPE   NODES   UNAVAILABLE   RESERVED   GPU-TAINTED   LIMIT   HEADROOM', 'fleet   1000    12            1          0             50      37', '', 'ACTION   USED   LIMIT   PER   REMAINING', 'cordon   4      10      10m   6', ''].join('\n'),
    );
    // the GPU budget: 3 of 8 GPUs tainted on one node count 0.375 of a node; the per-node cap is shown
    const gpuGuard = renderGuard(
      {
        at: T0,
        paused: null,
        fleet: { scope: 'fleet', total: 40, unavailable: 1, reserved: 0, gpuWeight: 0.375, limit: 2 },
        groups: [],
        gpus: [{ node: 'gpu-007', tainted: ['GPU-a', 'GPU-b', 'GPU-c'], gpus: 8, weight: 0.375, cap: 4 }],
        rateLimits: [],
        breakers: [],
      },
      T0,
    );
    expect(gpuGuard).to.equal(
      [
        'ACTIVE (not paused)',
        '',
        'SCOPE   NODES   UNAVAILABLE   RESERVED   GPU-TAINTED   LIMIT   HEADROOM',
        'fleet   40      1             0          0.38          2       0.63',
        '',
        'NODE      TAINTED GPUS   OF   WEIGHT   CAP   GPUS',
        'gpu-007   3              8    0.38     4     GPU-a,GPU-b,GPU-c',
        '',
      ].join('\n'),
    );
    // foreign DeviceTaintRules the view cannot place: shown, as the reason new cordons/taints are denied
    const unplacedGuard = renderGuard(
      {
        at: T0,
        paused: null,
        fleet: { scope: 'fleet', total: 40, unavailable: 0, reserved: 0, gpuWeight: 0, limit: 2 },
        groups: [],
        gpus: [],
        rateLimits: [],
        breakers: [],
        unplacedDeviceTaints: { rules: [{ rule: 'nvsentinel-q', reason: 'a CEL selector outside the supported subset, not bounded by a pool or device' }], count: 1 },
      },
      T0,
    );
    expect(unplacedGuard.split('\n').slice(4)).to.deep.equal([
      '',
      'DENYING new cordons/taints: 1 DeviceTaintRule(s) of others cannot be mapped to GPUs',
      'RULE           WHY',
      'nvsentinel-q   a CEL selector outside the supported subset, not bounded by a pool or device',
      '',
    ]);
    const ledger = renderLedger([
      { ts: '2026-11-21T10:00:01.000Z', rule: 'r', action: 'rollback', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'drv' }, outcome: 'denied', reason: 'x', guard: 'paused' },
      { ts: '2026-11-21T10:00:02.000Z', kind: 'rule-toggle', rule: 'r', enabled: false, reason: 'y', by: 'alice', expiresAt: null },
    ]);
    expect(ledger.split('\n')[1]).to.equal('2026-11-21T10:00:01.000Z   r      rollback         DaemonSet/gpu-operator/drv   denied    paused   x');
    expect(ledger.split('\n')[2]).to.equal('2026-11-21T10:00:02.000Z   r      toggle:disable   Rule/r                       -         -        y [by alice]');
    expect(span(90_000)).to.equal('1m30s');
    expect(span(7_200_000 + 300_000)).to.equal('2h5m');
  });
});

describe('ctl: against a control API server', () => {
  let server: EngineHttpServer;
  let base: string;
  const clock = new ManualClock(T0);
  let fb: ReturnType<typeof fakeBackend>;

  before(async () => {
    fb = fakeBackend(clock);
    ({ server, base } = await startControlServer(fb.backend, `${ADMIN} admin alice\n${READER} read-only grafana\n`, clock));
  });
  after(() => server.close());

  async function ctl(args: string[], token: string | undefined = ADMIN) {
    let out = '';
    let err = '';
    const env: NodeJS.ProcessEnv = { NODEWARDEN_SERVER: base, ...(token ? { NODEWARDEN_TOKEN: token } : {}) };
    const code = await run(args, { out: (s) => (out += s), err: (s) => (err += s), env, now: () => clock.now() });
    return { code, out, err };
  }

  it('disables a rule with a TTL and lists it', async () => {
    const d = await ctl(['rules', 'disable', 'gpu-xid-fatal', '--reason', 'fw rollout', '--ttl', '1h']);
    expect(d.code).to.equal(0);
    expect(d.out).to.equal('rule gpu-xid-fatal disabled until 2026-11-21T11:00:00.000Z (by alice: fw rollout)\n');
    const l = await ctl(['rules', 'list'], READER);
    expect(l.out.split('\n')[1]).to.match(/^gpu-xid-fatal\s+enabled\s+disabled\s+disabled\s+1h\s+alice\s+fw rollout$/);
    const j = await ctl(['rules', 'list', '-o', 'json'], READER);
    expect((JSON.parse(j.out) as { rules: unknown[] }).rules).to.have.length(2);
    const y = await ctl(['-o', 'yaml', 'guard'], READER);
    expect(y.out).to.contain('fleet:\n  scope: fleet\n');
  });

  it('prints the server message on 401 and 403, and a clear error when nothing listens', async () => {
    const ro = await ctl(['pause', '--reason', 'x'], READER);
    expect(ro.code).to.equal(2);
    expect(ro.err).to.equal('nodewarden ctl: server answered 403 FORBIDDEN: token "grafana" has role read-only; POST /api/v1/pause needs admin\n');
    const none = await ctl(['guard'], '');
    expect(none.err).to.equal('nodewarden ctl: server answered 401 UNAUTHORIZED: missing bearer token (send "Authorization: Bearer <token>")\n');
    const bad = await ctl(['rules', 'disable', 'gpu-xid-fatal', '--reason', 'x', '--ttl', 'soon']);
    expect(bad.err).to.contain('400 REQUEST_INVALID: invalid request body\n  /ttl: must be a duration');
    const port = await freePort();
    let out = '';
    let err = '';
    const code = await run(['guard', '--server', `http://127.0.0.1:${port}`], { out: (s) => (out += s), err: (s) => (err += s), env: { NODEWARDEN_TOKEN: ADMIN }, now: () => T0 });
    expect(code).to.equal(1);
    expect(err).to.equal(`nodewarden ctl: cannot connect to http://127.0.0.1:${port}: connection refused (is the engine running? set --server or NODEWARDEN_SERVER)\n`);
    expect(out).to.equal('');
  });

  it('rejects flags a command does not take and missing reasons before calling the server', async () => {
    let err: unknown;
    try {
      await ctl(['pause', '--ttl', '1h', '--reason', 'x']);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.contain('--ttl is not an option of "ctl pause"');
    try {
      await ctl(['rules', 'enable', 'gpu-xid-fatal']);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.contain('needs --reason');
  });

  it('pause, resume and ledger round-trip', async () => {
    expect((await ctl(['pause', '--reason', 'incident 7'])).out).to.equal('paused: every action is now denied (by alice: incident 7)\n');
    expect(fb.guard.paused).to.deep.include({ by: 'alice' });
    expect((await ctl(['resume'])).out).to.equal('resumed (by alice)\n');
    const l = await ctl(['ledger', '--rule', 'gpu-xid-fatal', '--limit', '5'], READER);
    expect(l.code).to.equal(0);
    expect(l.out).to.contain('toggle:disable');
  });
});
