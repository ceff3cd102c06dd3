/**
 * PagerDuty pager against the local receiver that validates every request
 * against the published Events v2 contract (../shared/contracts).
 */
import axios from 'axios';
import { expect } from 'chai';
import { MemoryLogger } from '../../core/logger.js';
import type { Decision } from '../../core/decision.js';
import { createPagerDutyPager } from '../../remediations/pager/pagerduty.js';
import { createPagerExecutor } from '../../remediations/pager/pager-executor.js';
import type { PagerDutyReceiver } from '../receivers/pagerduty.js';
import { startPagerDutyReceiver } from '../receivers/pagerduty.js';
import { registerSecret } from '../harness/secrets.js';

const KEY = registerSecret('pagerduty routing key', 'R0UT1NGK3Y0123456789abcdefABCDEF'); // 32 chars
const fast = { baseMs: 20, maxMs: 2000, maxAttempts: 5 };

function page(over: Partial<Decision> = {}): Decision {
  return {
    id: 'd1',
    at: Date.parse('2026-11-21T10:15:24.001Z'),
    rule: 'gpu-xid-fatal',
    action: 'page',
    target: { kind: 'Node', name: 'gpu-worker-042' },
    reason: 'Xid 79 (GPU has fallen off the bus) on gpu-worker-042',
    severity: 'critical',
    dedupKey: 'gpu-xid-fatal:gpu-worker-042',
    group: { pool: 'h100-train' },
    evidence: { events: ['01JD1', '01JD2'], code: 79 },
    ...over,
  };
}

describe('pager: PagerDuty Events v2 against the contract receiver', function () {
  this.timeout(30_000);
  let rx: PagerDutyReceiver;
  let logger: MemoryLogger;
  beforeEach(async () => {
    rx = await startPagerDutyReceiver();
    logger = new MemoryLogger();
  });
  afterEach(async () => {
    await rx.close();
    expect(JSON.stringify(logger.records), 'routing key never logged').not.to.contain(KEY);
  });

  it('triggers and resolves one alert with the same dedup_key, with summary, source, severity and evidence', async () => {
    const exec = createPagerExecutor({ pagers: [createPagerDutyPager({ url: rx.url, routingKey: KEY, logger, retry: fast })], logger });
    expect((await exec.execute(page())).ok).to.equal(true);
    expect(rx.alerts.get('gpu-xid-fatal:gpu-worker-042')).to.equal('triggered');
    expect((await exec.execute(page({ id: 'd2', action: 'resolve', reason: 'recovered' }))).ok).to.equal(true);
    expect(rx.rejected).to.deep.equal([]);
    expect(rx.accepted.map((e) => [e.event_action, e.dedup_key])).to.deep.equal([
      ['trigger', 'gpu-xid-fatal:gpu-worker-042'],
      ['resolve', 'gpu-xid-fatal:gpu-worker-042'],
    ]);
    expect(rx.alerts.get('gpu-xid-fatal:gpu-worker-042')).to.equal('resolved');
    const t = rx.accepted[0]!;
    expect(t.routing_key).to.equal(KEY);
    expect(t.payload).to.deep.include({ summary: 'Xid 79 (GPU has fallen off the bus) on gpu-worker-042', source: 'gpu-worker-042', severity: 'critical', timestamp: '2026-11-21T10:15:24.001Z' });
    expect(t.payload?.custom_details).to.deep.include({ rule: 'gpu-xid-fatal', group: 'pool=h100-train', evidence: { events: ['01JD1', '01JD2'], code: 79 } });
  });

  it('bounds a long dedup key to 255 chars (stable) and a long summary to 1024', async () => {
    const pager = createPagerDutyPager({ url: rx.url, routingKey: KEY, logger, retry: fast });
    const exec = createPagerExecutor({ pagers: [pager], logger });
    const d = page({ dedupKey: 'k'.repeat(300), reason: 'r'.repeat(5000) });
    expect((await exec.execute(d)).ok).to.equal(true);
    expect((await exec.execute({ ...d, action: 'resolve' })).ok).to.equal(true);
    expect(rx.rejected).to.deep.equal([]);
    const [a, b] = rx.accepted;
    expect(a!.dedup_key!.length).to.be.at.most(255);
    expect(b!.dedup_key).to.equal(a!.dedup_key);
    expect(a!.payload!.summary.length).to.equal(1024);
  });

  it('retries 429 honouring Retry-After, and 5xx, with back-off', async () => {
    const pager = createPagerDutyPager({ url: rx.url, routingKey: KEY, logger, retry: fast });
    rx.failNext(1, { status: 429, retryAfter: '1' });
    const t0 = Date.now();
    await pager.send({ event: 'trigger', dedupKey: 'k1', summary: 's', severity: 'warning', source: 'n', rule: 'r' });
    expect(Date.now() - t0, 'waited for Retry-After').to.be.at.least(950);
    expect(rx.attempts).to.equal(2);
    rx.failNext(2, { status: 500 });
    rx.failNext(1, { status: 503 });
    await pager.send({ event: 'trigger', dedupKey: 'k2', summary: 's', severity: 'info', source: 'n', rule: 'r' });
    expect(rx.attempts).to.equal(6);
    expect(rx.accepted.map((e) => e.dedup_key)).to.deep.equal(['k1', 'k2']);
    expect(logger.records.filter((r) => r.msg === 'pagerduty: retrying')).to.have.length(4);
  });

  it('gives up after maxAttempts on persistent 5xx with a retriable error', async () => {
    const pager = createPagerDutyPager({ url: rx.url, routingKey: KEY, logger, retry: { ...fast, maxAttempts: 3 } });
    rx.failNext(5, { status: 502 });
    let err: unknown;
    try {
      await pager.send({ event: 'trigger', dedupKey: 'k', summary: 's', severity: 'info', source: 'n', rule: 'r' });
    } catch (e) {
      err = e;
    }
    expect(err).to.include({ code: 'UNAVAILABLE', retriable: true });
    expect(rx.attempts).to.equal(3);
  });

  it('does NOT retry a 400 (a 31-char routing key is rejected by the receiver), and never leaks the key', async () => {
    const badKey = KEY.slice(1);
    const pager = createPagerDutyPager({ url: rx.url, routingKey: badKey, logger, retry: fast });
    let err: unknown;
    try {
      await pager.send({ event: 'trigger', dedupKey: 'k', summary: 's', severity: 'critical', source: 'n', rule: 'r' });
    } catch (e) {
      err = e;
    }
    expect(err).to.include({ code: 'REQUEST_INVALID', retriable: false });
    expect(String((err as Error).message)).not.to.contain(badKey);
    expect(JSON.stringify((err as Error).cause)).not.to.contain(badKey);
    expect(rx.attempts).to.equal(1);
    expect(rx.rejected[0]!.errors).to.include('routing_key must be 32 characters');
    expect(JSON.stringify(logger.records)).not.to.contain(badKey);
  });

  it('is a real check: the receiver rejects requests that break the contract', async () => {
    const post = (body: unknown) => axios.post(`${rx.url}/v2/enqueue`, body, { validateStatus: () => true });
    const good = { routing_key: KEY, event_action: 'trigger', dedup_key: 'x', payload: { summary: 's', source: 'n', severity: 'critical' } };
    expect((await post(good)).status).to.equal(202);
    const bad: Array<[string, unknown]> = [
      ['no severity', { ...good, payload: { summary: 's', source: 'n' } }],
      ['bad severity', { ...good, payload: { ...good.payload, severity: 'fatal' } }],
      ['no source', { ...good, payload: { summary: 's', severity: 'info' } }],
      ['bad action', { ...good, event_action: 'fire' }],
      ['no routing key', { event_action: 'trigger', payload: good.payload }],
      ['31-char key', { ...good, routing_key: KEY.slice(1) }],
      ['256-char dedup key', { ...good, dedup_key: 'd'.repeat(256) }],
      ['resolve without dedup key', { routing_key: KEY, event_action: 'resolve' }],
      ['bad timestamp', { ...good, payload: { ...good.payload, timestamp: 'yesterday' } }],
    ];
    for (const [what, body] of bad) expect((await post(body)).status, what).to.equal(400);
    expect(rx.accepted).to.have.length(1);
    expect(rx.rejected).to.have.length(bad.length);
  });
});
