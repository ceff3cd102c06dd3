/**
 * Terminal and ledger injection (issue 10): control characters in user free
 * text are refused at the API boundary, and escaped on output by ctl.
 */
import { expect } from 'chai';
import { validateLedgerQuery, validatePauseBody, validateToggleBody } from '../../../control/api.js';
import { renderGuard, renderLedger, renderRules } from '../../../control/render.js';
import { ManualClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { escapeControl } from '../../../core/text.js';
import { EngineHttpServer } from '../../../control/server.js';
import { parseTokens } from '../../../control/tokens.js';
import type { GuardStatus } from '../../../remediations/ports.js';
import { fakeBackend } from './fake-backend.js';

const EVIL = 'maint\u001b[2J\u001b[1;1Hall good\nFORGED LINE\u0007';
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('control: terminal and ledger injection', function () {
  it('the API refuses reasons and names with ESC, newline or other control characters', function () {
    expect(validateToggleBody({ reason: EVIL }).problems).to.deep.equal([{ path: '/reason', message: 'must not contain control characters (found \\e at offset 5)' }]);
    expect(validatePauseBody({ reason: 'a\nb' }).problems[0]!.message).to.match(/control characters \(found \\n/);
    expect(validatePauseBody({ reason: 'right-to-left \u202e override' }).problems[0]!.message).to.match(/\\u202e/);
    const q = validateLedgerQuery(new URLSearchParams({ node: 'n1\u001b]0;pwned\u0007' }), Date.now());
    expect(q.problems.map((p) => p.path)).to.deep.equal(['?node']);
    expect(validateToggleBody({ reason: 'plain reason, tabs\tare not ok' }).problems).to.have.length(1);
    expect(validateToggleBody({ reason: 'ünïcödé and emoji 🚑 are fine' }).problems).to.deep.equal([]);
  });

  it('ctl escapes control characters already stored in the ledger, toggles and pause', function () {
    const now = Date.parse('2026-11-21T10:00:00.000Z');
    const ledger = renderLedger([
      { ts: '2026-11-21T10:00:00.000Z', rule: 'r', action: 'cordon', target: { kind: 'Node', name: 'n\u001b[31m1' }, outcome: 'executed', reason: EVIL, guard: null },
      { kind: 'rule-toggle', ts: '2026-11-21T10:00:00.000Z', rule: 'r', enabled: false, reason: EVIL, by: 'eve\n', expiresAt: null } as never,
    ]);
    expect(ledger).to.not.match(RAW_CONTROL);
    expect(ledger.split('\n').filter((l) => l !== '')).to.have.length(3);
    expect(ledger).to.contain('maint\\e[2J\\e[1;1Hall good\\nFORGED LINE\\x07');
    const rules = renderRules([{ id: 'r', fileEnabled: true, effective: false, toggle: { enabled: false, reason: EVIL, by: 'eve', at: now, expiresAt: null } } as never], now);
    expect(rules).to.not.match(RAW_CONTROL);
    const guard = renderGuard({ paused: { reason: EVIL, by: 'eve', at: now }, fleet: { scope: 'fleet', total: 1, unavailable: 0, reserved: 0, gpuWeight: 0, limit: 1 }, groups: [], gpus: [], rateLimits: [], breakers: [] } as unknown as GuardStatus, now);
    expect(guard).to.not.match(RAW_CONTROL);
    expect(escapeControl('a\u0000b\u009bc')).to.equal('a\\x00b\\x9bc');
  });

  describe('over HTTP', function () {
    let server: EngineHttpServer;
    let base: string;
    const ADMIN = 'adm1n-t0ken-0123456789abcdef';
    before(async function () {
      const clock = new ManualClock(Date.parse('2026-11-21T10:00:00.000Z'));
      server = new EngineHttpServer({
        host: '127.0.0.1',
        port: 0,
        registry: createRegistry('engine'),
        readiness: () => Promise.resolve({ ready: true, checks: {} }),
        control: { backend: fakeBackend(clock).backend, tokens: parseTokens(`${ADMIN} admin alice\n`, 'tokens') },
        clock,
        logger: silentLogger,
      });
      base = `http://127.0.0.1:${(await server.listen()).port}`;
    });
    after(() => server.close());

    const post = (path: string, body: unknown) =>
      fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    it('a toggle with ESC and newline in its reason is a 400 naming the field; nothing is stored', async function () {
      const res = await post('/api/v1/rules/gpu-xid-fatal/disable', { reason: EVIL, ttl: '1h' });
      expect(res.status).to.equal(400);
      const body = (await res.json()) as { error: { problems: Array<{ path: string }> } };
      expect(body.error.problems.map((p) => p.path)).to.deep.equal(['/reason']);
    });

    it('a rule id with control characters or a malformed escape is a 400, not a 500', async function () {
      expect((await post('/api/v1/rules/r%1B%5B2J/disable', { reason: 'x' })).status).to.equal(400);
      expect((await post('/api/v1/rules/%E0%A4%A/disable', { reason: 'x' })).status).to.equal(400);
    });
  });
});
