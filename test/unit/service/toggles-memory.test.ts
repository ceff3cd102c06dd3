import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { ToggleService } from '../../../rules/toggles/toggle-service.js';

describe('rule toggles: memory adapter', () => {
  const T0 = Date.parse('2026-11-21T10:00:00.000Z');

  it('a disable overrides the file state until its TTL, then vanishes by itself', async () => {
    const clock = new ManualClock(T0);
    const toggles = new MemoryRuleToggles(clock);
    await toggles.set({ rule: 'gpu-xid-fatal', enabled: false, reason: 'maintenance', by: 'alice', at: T0, expiresAt: T0 + 60_000 });
    expect(toggles.isEnabled('gpu-xid-fatal', true, clock.now())).to.equal(false);
    expect(toggles.isEnabled('other-rule', true, clock.now())).to.equal(true);
    expect(toggles.list(clock.now()).map((t) => t.rule)).to.deep.equal(['gpu-xid-fatal']);

    clock.advance(59_999);
    expect(toggles.isEnabled('gpu-xid-fatal', true, clock.now())).to.equal(false);
    clock.advance(1);
    expect(toggles.isEnabled('gpu-xid-fatal', true, clock.now())).to.equal(true);
    expect(toggles.list(clock.now())).to.deep.equal([]);
  });

  it('an enable overrides a rule disabled in its file; no TTL means until changed', async () => {
    const clock = new ManualClock(T0);
    const toggles = new MemoryRuleToggles(clock);
    await toggles.set({ rule: 'r', enabled: true, reason: 'try it', by: 'bob', at: T0, expiresAt: null });
    clock.advance(365 * 86_400_000);
    expect(toggles.isEnabled('r', false, clock.now())).to.equal(true);
    await toggles.clear('r');
    expect(toggles.isEnabled('r', false, clock.now())).to.equal(false);
  });

  it('ToggleService applies the change and records one rule-toggle audit record per change', async () => {
    const clock = new ManualClock(T0);
    const toggles = new MemoryRuleToggles(clock);
    const audit = new MemoryLedger();
    const svc = new ToggleService(toggles, audit, clock);
    const t = await svc.disable({ rule: 'kubeproxy-restarts', reason: 'noisy during upgrade', by: 'alice', ttlMs: 3_600_000 });
    expect(t.expiresAt).to.equal(T0 + 3_600_000);
    expect(toggles.isEnabled('kubeproxy-restarts', true, clock.now())).to.equal(false);
    await svc.enable({ rule: 'kubeproxy-restarts', reason: 'upgrade done', by: 'bob' });
    expect(toggles.isEnabled('kubeproxy-restarts', true, clock.now())).to.equal(true);
    await svc.clear({ rule: 'kubeproxy-restarts', reason: 'back to file', by: 'bob' });
    expect(audit.entries).to.deep.equal([
      { ts: '2026-11-21T10:00:00.000Z', kind: 'rule-toggle', rule: 'kubeproxy-restarts', enabled: false, reason: 'noisy during upgrade', by: 'alice', expiresAt: '2026-11-21T11:00:00.000Z' },
      { ts: '2026-11-21T10:00:00.000Z', kind: 'rule-toggle', rule: 'kubeproxy-restarts', enabled: true, reason: 'upgrade done', by: 'bob', expiresAt: null },
      { ts: '2026-11-21T10:00:00.000Z', kind: 'rule-toggle', rule: 'kubeproxy-restarts', enabled: null, reason: 'back to file', by: 'bob', expiresAt: null },
    ]);
  });
});
