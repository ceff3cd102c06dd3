/**
 * The Slack Web API pager in two REAL engine processes (Kafka + Redis)
 * against the local contract-checking Slack receiver: a storm split across
 * both replicas is ONE Slack message (one chat.postMessage), and the
 * incident's later updates edit that same message (chat.update with its
 * channel ID and ts, read from Redis by whichever replica sends), every call
 * with the bot token as `Authorization: Bearer` and a body Slack accepts.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { registerSecret } from '../harness/secrets.js';
import { produce, replicaPairSuite, waitFor, xid } from './engine-support.js';
import type { SlackApiReceiver } from '../receivers/slack-api.js';
import { startSlackApiReceiver } from '../receivers/slack-api.js';

// registered: the run's secret scan fails the suite if the token reaches any engine log
const TOKEN = registerSecret('slack bot token', `xoxb-itest-${randomBytes(16).toString('hex')}`);

describe('Slack Web API pager across two engine replicas (Kafka + Redis)', function () {
  this.timeout(180_000);
  let rx: SlackApiReceiver;
  const rp = replicaPairSuite('slk', {
    setup: async () => {
      rx = await startSlackApiReceiver({ token: TOKEN, minIntervalMs: 1000 });
      process.env.NODEWARDEN_SLACK_BOT_TOKEN = TOKEN;
      return { pager: { slackApi: { channel: '#alerts', url: rx.url } }, incidents: { groupInterval: '3s' } };
    },
    afterStart: () => {
      delete process.env.NODEWARDEN_SLACK_BOT_TOKEN;
    },
    teardown: async () => {
      await rx?.close();
    },
  });

  it('a storm split across both replicas is one message; its updates edit that message', async () => {
    const nodes = Array.from({ length: 12 }, (_, i) => `gpu-node-0${30 + i}`);
    await produce(rp.brokers, rp.topics.signals, nodes.map((n) => ({ key: n, value: xid(n, 79) })));
    await waitFor('the incident message', () => rx.calls.some((c) => c.method === 'chat.postMessage'), 90_000);
    const later = Array.from({ length: 4 }, (_, i) => `gpu-node-0${60 + i}`);
    await produce(rp.brokers, rp.topics.signals, later.map((n) => ({ key: n, value: xid(n, 79) })));
    await waitFor('an update naming a later node', () => rx.calls.some((c) => c.method === 'chat.update' && JSON.stringify(c.body).includes(later[0] as string)), 90_000);
    expect(rx.rejected, JSON.stringify(rx.rejected)).to.deep.equal([]);
    const posts = rx.calls.filter((c) => c.method === 'chat.postMessage');
    expect(posts, JSON.stringify(rx.calls.map((c) => c.method))).to.have.length(1);
    expect(rx.messages.size).to.equal(1);
    const [m] = [...rx.messages.values()];
    const updates = rx.calls.filter((c) => c.method === 'chat.update');
    expect(updates.length).to.be.at.least(1);
    expect(updates.every((u) => u.body.ts === m?.ts && u.body.channel === rx.channelId)).to.equal(true);
    const spacing = rx.calls.map((c, i) => `${c.method} +${i === 0 ? 0 : c.at - (rx.calls[i - 1]?.at ?? c.at)}ms`).join(', ');
    expect(rx.tooFast, `calls closer than one second in the channel: ${spacing}`).to.equal(0);
    // every Slack call is one executed page in the ledger (the ledger follower may lag the receiver)
    const executedPages = (): number => rp.ledger.records.filter((r) => r.action === 'page' && r.outcome === 'executed' && r.rule === 'test-xid-fatal').length;
    await waitFor('a ledger record per Slack call', () => executedPages() === rx.calls.length, 30_000);
  });
});
