/**
 * Slack pager against the local webhook receiver: grouping, ≤ 1 message/s,
 * 429 + Retry-After, and the receiver's own contract checks.
 */
import axios from 'axios';
import { expect } from 'chai';
import { MemoryLogger } from '../../core/logger.js';
import type { PageRequest } from '../../remediations/pager/pager.js';
import { createSlackPager, createSlackWebhook } from '../../remediations/pager/slack.js';
import type { SlackPager, SlackWebhookOptions } from '../../remediations/pager/slack.js';
import type { SlackReceiver } from '../receivers/slack.js';
import { startSlackReceiver } from '../receivers/slack.js';
import { registerSecret } from '../harness/secrets.js';

const req = (n: number, over: Partial<PageRequest> = {}): PageRequest => ({
  event: 'trigger',
  dedupKey: `gpu-xid-fatal:gpu-${n}`,
  summary: `Xid 79 (GPU has fallen off the bus) on gpu-${n}`,
  severity: 'critical',
  source: `gpu-${n}`,
  rule: 'gpu-xid-fatal',
  ...over,
});

describe('pager: Slack incoming webhook against the receiver', function () {
  this.timeout(30_000);
  let rx: SlackReceiver;
  let logger: MemoryLogger;
  /** The Slack pager over its webhook client, both logging to `logger`. */
  const slackPager = (url: string, groupWindowMs: number, webhook: Partial<SlackWebhookOptions> = {}): SlackPager =>
    createSlackPager({ webhook: createSlackWebhook({ ...webhook, url, logger }), logger, groupWindowMs });
  beforeEach(async () => {
    rx = await startSlackReceiver();
    registerSecret('slack webhook URL', rx.url);
    logger = new MemoryLogger();
  });
  afterEach(async () => {
    await rx.close();
    expect(JSON.stringify(logger.records), 'webhook URL never logged').not.to.contain(rx.url);
  });

  it('groups a burst into ONE Block Kit message with a fallback text', async () => {
    const pager = slackPager(rx.url, 200);
    await Promise.all([1, 2, 3, 4, 5].map((n) => pager.send(req(n, n === 5 ? { event: 'resolve', severity: 'info' } : {}))));
    expect(rx.rejected).to.deep.equal([]);
    expect(rx.accepted).to.have.length(1);
    const body = rx.accepted[0]!.body;
    expect(body.text).to.match(/^nodewarden: 5 alerts: \[CRITICAL\] Xid 79/);
    expect(body.blocks![0]).to.deep.equal({ type: 'header', text: { type: 'plain_text', text: 'nodewarden: 5 alerts' } });
    expect(body.blocks!.filter((b) => b.type === 'section')).to.have.length(5);
    expect(body.blocks![9]!.text!.text).to.contain('*RESOLVED*');
    await pager.close();
  });

  it('sends at most one message per second', async () => {
    const pager = slackPager(rx.url, 10, { minIntervalMs: 1000 });
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 4; i++) {
      sends.push(pager.send(req(i)));
      await new Promise((r) => setTimeout(r, 30)); // separate groups
    }
    await Promise.all(sends);
    expect(rx.accepted).to.have.length(4);
    const gaps = rx.accepted.slice(1).map((m, i) => m.at - rx.accepted[i]!.at);
    for (const g of gaps) expect(g).to.be.at.least(950);
    expect(rx.tooFast).to.equal(0);
    await pager.close();
  });

  it('honours 429 Retry-After and delivers once', async () => {
    const pager = slackPager(rx.url, 10, { retry: { baseMs: 20 } });
    rx.failNext(1, { status: 429, retryAfter: '2' });
    const t0 = Date.now();
    await pager.send(req(1));
    expect(Date.now() - t0).to.be.at.least(1950);
    expect(rx.attempts).to.equal(2);
    expect(rx.accepted).to.have.length(1);
    await pager.close();
  });

  it('caps a huge burst at 50 blocks and still passes the contract', async () => {
    const pager = slackPager(rx.url, 100);
    await Promise.all(Array.from({ length: 60 }, (_, i) => pager.send(req(i, { summary: 'x'.repeat(4000) }))));
    expect(rx.rejected).to.deep.equal([]);
    expect(rx.accepted).to.have.length(1);
    expect(rx.accepted[0]!.body.blocks!.length).to.be.at.most(50);
    expect(rx.accepted[0]!.body.blocks!.at(-1)!.text!.text).to.equal('…and 40 more');
    await pager.close();
  });

  it('is a real check: the receiver rejects payloads that break the contract, and a 4xx (unknown webhook, 404 no_service) is not retried', async () => {
    const post = (body: unknown) => axios.post(rx.url, body, { validateStatus: () => true });
    expect((await post({ text: 'hello' })).status).to.equal(200);
    const bad: Array<[string, unknown]> = [
      ['empty', {}],
      ['channel override', { text: 'x', channel: '#ops' }],
      ['51 blocks', { blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) }],
      ['header too long', { blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] }],
      ['section without text', { blocks: [{ type: 'section' }] }],
      ['unknown block', { blocks: [{ type: 'bogus' }] }],
    ];
    for (const [what, body] of bad) expect((await post(body)).status, what).to.equal(400);
    expect(rx.rejected).to.have.length(bad.length);
    // the pager sees a 400 and does not retry
    const before = rx.attempts;
    const pager = slackPager(rx.url.replace('/services/', '/services/x/'), 10);
    let err: unknown;
    try {
      await pager.send(req(1));
    } catch (e) {
      err = e;
    }
    expect(err).to.include({ code: 'REQUEST_INVALID', retriable: false });
    expect(rx.attempts - before).to.equal(1);
    await pager.close();
  });
});
