import { expect } from 'chai';
import { NodewardenError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import { createPagerExecutor, pageRequestOf } from '../../../remediations/pager/pager-executor.js';
import { boundedDedupKey } from '../../../remediations/pager/pager.js';
import type { Pager } from '../../../remediations/pager/pager.js';
import { toPagerDutyEvent, enqueueUrl } from '../../../remediations/pager/pagerduty.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import { backoffMs, parseRetryAfter } from '../../../remediations/pager/retry.js';
import { buildSlackMessage } from '../../../remediations/pager/slack.js';
import { createDryRunExecutor } from '../../../remediations/dry-run.js';
import { cordon, decision } from './fake-cluster.js';

describe('pagers (pure parts)', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).to.equal(3000);
    expect(parseRetryAfter('0.5')).to.equal(500);
    expect(parseRetryAfter('Sat, 21 Nov 2026 10:00:05 GMT', Date.parse('2026-11-21T10:00:00Z'))).to.equal(5000);
    expect(parseRetryAfter('soon')).to.equal(undefined);
    expect(parseRetryAfter(undefined)).to.equal(undefined);
  });

  it('backs off exponentially with full jitter, never less than Retry-After, capped', () => {
    const p = { maxAttempts: 5, baseMs: 100, maxMs: 1000 };
    expect(backoffMs(0, p, () => 1)).to.equal(100);
    expect(backoffMs(3, p, () => 1)).to.equal(800);
    expect(backoffMs(6, p, () => 1)).to.equal(1000);
    expect(backoffMs(3, p, () => 0.5)).to.equal(400);
    expect(backoffMs(0, p, () => 0.5, 700)).to.equal(700);
    expect(backoffMs(0, p, () => 0.5, 60_000)).to.equal(1000);
  });

  it('keeps dedup keys stable and within 255 chars', () => {
    expect(boundedDedupKey('short')).to.equal('short');
    const long = 'x'.repeat(400);
    expect(boundedDedupKey(long)).to.have.length(255);
    expect(boundedDedupKey(long)).to.equal(boundedDedupKey(long));
    expect(boundedDedupKey(long)).not.to.equal(boundedDedupKey(`${long}y`));
  });

  it('maps a decision to a PagerDuty event: trigger has a payload, resolve only the key', () => {
    const req = pageRequestOf(decision({ action: 'page', severity: 'error', dedupKey: 'k', group: { zone: 'z', pool: 'p' } }));
    const ev = toPagerDutyEvent(req, 'K'.repeat(32), 'nodewarden');
    expect(ev).to.deep.include({ routing_key: 'K'.repeat(32), event_action: 'trigger', dedup_key: 'k' });
    expect(ev.payload).to.include({ severity: 'error', source: 'gpu-000', group: 'pool=p,zone=z' });
    const res = toPagerDutyEvent({ ...req, event: 'resolve' }, 'K'.repeat(32), 'nodewarden');
    expect(res.payload).to.equal(undefined);
    expect(enqueueUrl('https://events.pagerduty.com')).to.equal('https://events.pagerduty.com/v2/enqueue');
    expect(enqueueUrl('http://x/v2/enqueue')).to.equal('http://x/v2/enqueue');
  });

  it('builds one Slack message for a group, header within 150 chars', () => {
    const m = buildSlackMessage([pageRequestOf(decision({ action: 'page', severity: 'critical', reason: 'a' }))]);
    expect(m.text).to.equal('[CRITICAL] a');
    expect(m.blocks.map((b) => b.type)).to.deep.equal(['header', 'section', 'context']);
  });

  it('pager executor: ok when any pager delivered, failed when none did', async () => {
    const good = createRecordingPager();
    const bad: Pager = { name: 'bad', send: () => Promise.reject(new NodewardenError('UNAVAILABLE', 'down')) };
    const d = decision({ action: 'page', severity: 'critical', dedupKey: 'k' });
    const r1 = await createPagerExecutor({ pagers: [bad, good], logger: silentLogger }).execute(d);
    expect(r1.ok).to.equal(true);
    expect(r1.detail).to.contain('failed: bad: down');
    expect(good.sent).to.have.length(1);
    const r2 = await createPagerExecutor({ pagers: [bad], logger: silentLogger }).execute(d);
    expect(r2.ok).to.equal(false);
    expect(r2.error?.message).to.contain('not delivered');
  });

  it('dry-run executor acts on nothing and marks its results', async () => {
    const r = await createDryRunExecutor().execute(cordon('gpu-7'));
    expect(r).to.deep.equal({ ok: true, dryRun: true, detail: 'dry-run: would cordon Node/gpu-7' });
  });
});
