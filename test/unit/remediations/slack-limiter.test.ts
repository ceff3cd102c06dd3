import { expect } from 'chai';
import type { AxiosInstance } from 'axios';
import { AxiosError, AxiosHeaders } from 'axios';
import { silentLogger } from '../../../core/logger.js';
import { slackDigestSender } from '../../../jobs/daily-digest.js';
import { createSlackPager, createSlackWebhook } from '../../../remediations/pager/slack.js';

/** A fake webhook on a fake clock: records when each message left; `fail` answers the next ones with a 429. */
function fakeSlack() {
  let t = 0;
  const posts: Array<{ at: number; text: string }> = [];
  const fails: string[] = [];
  const http = {
    post: (_url: string, body: { text: string }) => {
      const ra = fails.shift();
      if (ra !== undefined) {
        const headers = new AxiosHeaders({ 'retry-after': ra });
        const err = new AxiosError('429', 'ERR_BAD_RESPONSE', undefined, undefined, { status: 429, statusText: 'Too Many Requests', headers, config: { headers }, data: 'rate_limited' });
        return Promise.reject(err);
      }
      posts.push({ at: t, text: body.text });
      return Promise.resolve({ status: 200, data: 'ok' });
    },
  } as unknown as AxiosInstance;
  return {
    http,
    posts,
    fails,
    now: () => t,
    // time moves when the sleeper wakes (after other pending work), as with real timers
    sleep: async (ms: number) => {
      const until = t + ms;
      await new Promise((resolve) => setImmediate(resolve));
      t = Math.max(t, until);
    },
  };
}

const page = { event: 'trigger' as const, dedupKey: 'k', summary: 'gpu-1 Xid 79', severity: 'critical' as const, source: 'gpu-1', rule: 'gpu-xid-fatal' };
const digest = { text: 'nodewarden daily digest', blocks: [{ type: 'section', text: { type: 'mrkdwn' as const, text: 'digest' } }] };

/** The engine's wiring: one webhook client (slackWebhookFromConfig), the pager over it and the digest through it (createEngineJobs). */
function pagerAndDigest(f: ReturnType<typeof fakeSlack>) {
  const webhook = createSlackWebhook({ url: 'http://127.0.0.1/hook', logger: silentLogger, http: f.http, minIntervalMs: 1000, now: f.now, sleep: f.sleep, random: () => 0 });
  const pager = createSlackPager({ webhook, logger: silentLogger, groupWindowMs: 60_000 });
  const sender = slackDigestSender(webhook);
  return { pager, sender };
}

describe('slack: one rate limit for the pager and the daily digest', () => {
  it('a page and the digest posted together leave at least minIntervalMs apart', async () => {
    const f = fakeSlack();
    const { pager, sender } = pagerAndDigest(f);
    const paged = pager.send(page);
    const sent = sender.send(digest);
    await pager.flush();
    await Promise.all([paged, sent]);
    expect(f.posts.map((p) => p.text)).to.deep.equal(['nodewarden daily digest', '[CRITICAL] gpu-1 Xid 79']);
    const [a, b] = f.posts;
    expect((b?.at ?? 0) - (a?.at ?? 0)).to.be.at.least(1000);
  });

  it("a 429's Retry-After on the digest holds the pager too", async () => {
    const f = fakeSlack();
    const { pager, sender } = pagerAndDigest(f);
    f.fails.push('5');
    await sender.send(digest);
    const paged = pager.send(page);
    await pager.flush();
    await paged;
    expect(f.posts.map((p) => p.text)).to.deep.equal(['nodewarden daily digest', '[CRITICAL] gpu-1 Xid 79']);
    expect(f.posts[1]?.at ?? 0).to.be.at.least(5000 + 1000);
  });
});
