import { expect } from 'chai';
import { GUARDS, isGuardName } from '../../../core/decision.js';
import { redisScript } from '../../../adapters/redis/scripts.js';

describe('guard names (core/decision.ts GUARDS)', () => {
  it('lists each name once', () => {
    expect(new Set(GUARDS).size).to.equal(GUARDS.length);
  });

  it('knows every name the Redis guard script can deny with (lua/authorize.lua)', () => {
    const src = redisScript('guard.authorize').source;
    // deny('name', ...) and the budget step's `local g = 'name'` / `g = 'name'`
    const names = [...src.matchAll(/(?:deny\(|\bg = )'([A-Za-z]+)'/g)].map((m) => m[1] ?? '');
    expect(names).to.include.members(['paused', 'idempotency', 'inFlight', 'circuitOpen', 'cooldown', 'rateLimit', 'rollbackFlapping', 'rollbackWindow', 'maxUnavailable', 'maxUnavailablePerGroup', 'maxTaintedGpusPerNode']);
    expect(names.filter((n) => !isGuardName(n))).to.deep.equal([]);
  });

  it('rejects a name not in the list', () => {
    expect(isGuardName('maxUnavailable')).to.equal(true);
    expect(isGuardName('unknown')).to.equal(false);
  });
});
