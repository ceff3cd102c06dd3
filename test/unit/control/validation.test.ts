import { expect } from 'chai';
import { validateLedgerQuery, validatePauseBody, validateResumeBody, validateToggleBody } from '../../../control/api.js';

describe('control: request validation', () => {
  it('toggle body: reason required, ttl a positive duration, no unknown fields', () => {
    expect(validateToggleBody({ reason: 'maint', ttl: '1h' }).value).to.deep.equal({ reason: 'maint', ttlMs: 3_600_000 });
    expect(validateToggleBody({ reason: 'maint' }).value).to.deep.equal({ reason: 'maint', ttlMs: null });
    expect(validateToggleBody({}).problems).to.deep.equal([{ path: '/reason', message: 'is required' }]);
    expect(validateToggleBody({ reason: '  ', ttl: 'soon', by: 'me' }).problems).to.deep.equal([
      { path: '/by', message: 'unknown field' },
      { path: '/reason', message: 'must be a non-empty string' },
      { path: '/ttl', message: 'must be a duration like 30s, 15m, 1h, 1h30m' },
    ]);
    expect(validateToggleBody({ reason: 'x', ttl: '0' }).problems).to.deep.equal([{ path: '/ttl', message: 'must be greater than zero' }]);
    expect(validateToggleBody({ reason: 'x', ttl: '31d' }).problems).to.deep.equal([{ path: '/ttl', message: 'must be at most 30d' }]);
    expect(validateToggleBody([1]).problems[0]!.path).to.equal('');
    expect(validateToggleBody(undefined).value).to.equal(undefined);
  });

  it('pause needs a reason; resume takes an empty body', () => {
    expect(validatePauseBody({ reason: 'incident 42' }).value).to.deep.equal({ reason: 'incident 42' });
    expect(validatePauseBody({ reason: 3 }).problems).to.deep.equal([{ path: '/reason', message: 'must be a non-empty string' }]);
    expect(validatePauseBody(undefined).problems).to.have.length(1);
    expect(validateResumeBody(undefined).value).to.deep.equal({ reason: null });
    expect(validateResumeBody({}).value).to.deep.equal({ reason: null });
    expect(validateResumeBody({ force: true }).problems).to.deep.equal([{ path: '/force', message: 'unknown field' }]);
  });

  it('ledger query: durations back from now, RFC 3339, enums and limits', () => {
    const now = Date.parse('2026-11-21T12:00:00.000Z');
    const ok = validateLedgerQuery(new URLSearchParams('since=1h&until=2026-11-21T11:30:00Z&rule=r&node=n1&outcome=denied&limit=50'), now);
    expect(ok.value).to.deep.equal({ since: now - 3_600_000, until: Date.parse('2026-11-21T11:30:00Z'), rule: 'r', node: 'n1', outcome: 'denied', limit: 50 });
    expect(validateLedgerQuery(new URLSearchParams(''), now).value).to.deep.equal({ limit: 100 });
    const bad = validateLedgerQuery(new URLSearchParams('since=yesterday&outcome=maybe&limit=0&foo=1&rule=a&rule=b'), now);
    expect(bad.problems).to.deep.equal([
      { path: '?foo', message: 'unknown parameter' },
      { path: '?rule', message: 'given more than once' },
      { path: '?since', message: 'must be a duration back from now (e.g. 1h) or an RFC 3339 timestamp' },
      { path: '?outcome', message: 'must be one of executed, dry-run, denied, suppressed, failed, pending-approval' },
      { path: '?limit', message: 'must be an integer from 1 to 1000' },
    ]);
    expect(validateLedgerQuery(new URLSearchParams('since=10m&until=1h'), now).problems).to.deep.equal([{ path: '?since', message: 'must not be after until' }]);
  });
});
