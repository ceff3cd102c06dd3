/**
 * The Slack Web API pager against the local contract-checking receiver
 * (test/receivers/slack-api.ts): one message per incident, edited by any
 * replica; Slack's `ok:false` errors retried or final as they should be; at
 * most one message per interval per channel; the approval message's buttons
 * decide through the interactivity webhook and the message is edited after.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { NodewardenError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { Approvals } from '../../../remediations/approvals/approvals.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import type { PageRequest } from '../../../remediations/pager/pager.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import type { SlackApiOptions } from '../../../remediations/pager/slack-api.js';
import { createSlackApiPager, createSlackApprovalNotifier } from '../../../remediations/pager/slack-api.js';
import { SLACK_SLOT_NS } from '../../../remediations/pager/slack-limiter.js';
import { slackApiFromConfig } from '../../../remediations/pager/from-config.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { webhookMetrics } from '../../../remediations/webhooks/metrics.js';
import { createSlackInteractivity } from '../../../remediations/webhooks/slack-interactivity.js';
import { FakeCluster } from './fake-cluster.js';
import type { SlackApiReceiver } from '../../receivers/slack-api.js';
import { startSlackApiReceiver } from '../../receivers/slack-api.js';
import { slackButtonRequest } from '../../receivers/slack-interactivity.js';

const TOKEN = 'xoxb-test-0000-nodewarden';
const INTERVAL = 200;

function page(event: 'trigger' | 'resolve', summary: string, dedupKey = 'nodewarden/incident/xid/pool=h100'): PageRequest {
  return { event, dedupKey, summary, severity: 'critical', source: 'gpu-node-1', rule: 'xid', group: 'pool=h100' };
}

describe('Slack Web API pager (local receiver)', () => {
  let rx: SlackApiReceiver;
  let store: MemoryDocStore;
  const opts = (o: Partial<SlackApiOptions> = {}): SlackApiOptions => ({ token: TOKEN, channel: '#alerts', url: rx.url, store, logger: silentLogger, minIntervalMs: INTERVAL, retry: { baseMs: 10, maxMs: 2000 }, ...o });

  beforeEach(async () => {
    rx = await startSlackApiReceiver({ token: TOKEN, minIntervalMs: INTERVAL });
    store = new MemoryDocStore(new ManualClock(Date.now()));
  });
  afterEach(() => rx.close());

  it('posts one message per incident and edits it for updates and the resolve, from any replica, one call per interval', async () => {
    const a = createSlackApiPager(opts());
    const b = createSlackApiPager(opts()); // another replica over the same paging store
    await a.send(page('trigger', '3 nodes with Xid 79'));
    await b.send(page('trigger', 'update: 5 nodes with Xid 79'));
    await b.send(page('trigger', 'update: 6 nodes'));
    await a.send(page('resolve', 'every member cleared'));
    expect(rx.rejected, JSON.stringify(rx.rejected)).to.deep.equal([]);
    expect(rx.calls.map((c) => c.method)).to.deep.equal(['chat.postMessage', 'chat.update', 'chat.update', 'chat.update']);
    expect(rx.messages.size).to.equal(1);
    const [m] = [...rx.messages.values()];
    expect(m?.edits).to.equal(3);
    expect(m?.text).to.match(/^\[RESOLVED\] every member cleared/);
    expect(rx.calls[1]?.body).to.include({ channel: rx.channelId, ts: m?.ts });
    // b's calls keep their own spacing; a single replica's calls are spaced by the shared limiter
    const aCalls = [rx.calls[0], rx.calls[3]];
    expect((aCalls[1]?.at ?? 0) - (aCalls[0]?.at ?? 0)).to.be.at.least(INTERVAL - 50);
    expect((rx.calls[2]?.at ?? 0) - (rx.calls[1]?.at ?? 0)).to.be.at.least(INTERVAL - 50);
  });

  it('two replicas sending at the same moment share the channel slot through the paging store: no two calls closer than the interval', async () => {
    const a = createSlackApiPager(opts());
    const b = createSlackApiPager(opts()); // another replica over the same paging store
    await Promise.all([1, 2, 3, 4].map((i) => (i % 2 === 0 ? a : b).send(page('trigger', `incident ${i}`, `nodewarden/incident/xid/pool=p${i}`))));
    expect(rx.calls.map((c) => c.method)).to.deep.equal(['chat.postMessage', 'chat.postMessage', 'chat.postMessage', 'chat.postMessage']);
    expect(rx.tooFast, JSON.stringify(rx.calls.map((c) => c.at - (rx.calls[0]?.at ?? 0)))).to.equal(0);
    expect(await store.read(SLACK_SLOT_NS, '#alerts')).to.not.equal(null);
  });

  it('a replica that never posted (it knows the channel only by its ID) takes the same slot as the one that did', async () => {
    const a = createSlackApiPager(opts());
    const b = createSlackApiPager(opts()); // another replica over the same paging store
    await a.send(page('trigger', 'incident 1'));
    await new Promise((r) => setTimeout(r, INTERVAL + 50));
    // b edits incident 1's message by the channel ID while a posts a second incident by the channel's name
    await Promise.all([b.send(page('trigger', 'update: incident 1')), a.send(page('trigger', 'incident 2', 'nodewarden/incident/xid/pool=a100'))]);
    expect(rx.calls.map((c) => c.method).sort()).to.deep.equal(['chat.postMessage', 'chat.postMessage', 'chat.update']);
    expect(rx.tooFast, JSON.stringify(rx.calls.map((c) => [c.method, c.at - (rx.calls[0]?.at ?? 0)]))).to.equal(0);
  });

  it('when the paging store fails, each replica still spaces its own calls (and the page goes out)', async () => {
    const broken = Object.assign(Object.create(store) as MemoryDocStore, {
      // only the slot's document fails (the message references still work)
      read: <T>(ns: string, id: string) => (ns === SLACK_SLOT_NS ? Promise.reject(new Error('redis down')) : store.read<T>(ns, id)),
    });
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(msg ?? '') };
    const p = createSlackApiPager(opts({ store: broken, logger }));
    await p.send(page('trigger', 'first', 'k1'));
    await p.send(page('trigger', 'second', 'k2'));
    expect(warnings.filter((w) => /shared rate-limit slot unavailable/.test(w)), warnings.join('|')).to.have.length(2);
    expect(rx.calls.map((c) => c.method)).to.deep.equal(['chat.postMessage', 'chat.postMessage']);
    expect(rx.tooFast).to.equal(0);
  });

  it('a reopened incident (after its resolve) and a deleted message get a new message', async () => {
    const p = createSlackApiPager(opts());
    await p.send(page('trigger', 'first'));
    await p.send(page('resolve', 'cleared'));
    await p.send(page('trigger', 'again'));
    expect(rx.messages.size).to.equal(2);
    rx.messages.clear(); // someone deleted it in Slack: chat.update answers message_not_found
    await p.send(page('trigger', 'update after delete'));
    expect(rx.calls.map((c) => c.method)).to.deep.equal(['chat.postMessage', 'chat.update', 'chat.postMessage', 'chat.update', 'chat.postMessage']);
    expect([...rx.messages.values()][0]?.text).to.match(/update after delete/);
    expect(rx.tooFast).to.equal(0);
  });

  it('ratelimited (HTTP 429 + Retry-After) and internal_error are retried, honouring Retry-After', async () => {
    const p = createSlackApiPager(opts());
    rx.failNext(1, 'ratelimited', '1');
    rx.failNext(1, 'internal_error');
    const t0 = Date.now();
    await p.send(page('trigger', 'after a rate limit'));
    expect(rx.attempts).to.equal(3);
    expect(Date.now() - t0).to.be.at.least(950);
    expect(rx.messages.size).to.equal(1);
  });

  it('invalid_auth and channel_not_found are final, one clear error without the token', async () => {
    const bad = createSlackApiPager(opts({ token: 'xoxb-wrong' }));
    const e1 = await bad.send(page('trigger', 'x')).then(() => null, (e: unknown) => e);
    expect(e1).to.be.instanceOf(NodewardenError);
    expect((e1 as NodewardenError).code).to.equal('UNAUTHORIZED');
    expect((e1 as Error).message).to.equal('slack chat.postMessage: Slack error invalid_auth (not retried)');
    const nochan = createSlackApiPager(opts({ channel: '#nope' }));
    const e2 = await nochan.send(page('trigger', 'x')).then(() => null, (e: unknown) => e);
    expect((e2 as NodewardenError).code).to.equal('NOT_FOUND');
    expect((e2 as Error).message).to.match(/channel_not_found \(not retried\)/);
    expect(rx.attempts).to.equal(2);
    rx.failNext(5, 'ratelimited', '0');
    const limited = createSlackApiPager(opts({ retry: { maxAttempts: 3, baseMs: 1, maxMs: 5 } }));
    const e3 = await limited.send(page('trigger', 'x')).then(() => null, (e: unknown) => e);
    expect((e3 as NodewardenError).code).to.equal('RATE_LIMITED');
    expect((e3 as Error).message).to.match(/after 3 attempts/);
  });

  it('reads the bot token from the environment, never from the config; a missing token is a clear error', () => {
    const cfg = { ...DEFAULT_CONFIG, pager: { ...DEFAULT_CONFIG.pager, slackApi: { channel: '#alerts' } } };
    expect(() => slackApiFromConfig(cfg, store, silentLogger, {})).to.throw(/pager.slackApi: no bot token \(set pager.slackApi.tokenFile or \$NODEWARDEN_SLACK_BOT_TOKEN\)/);
    const s = slackApiFromConfig(cfg, store, silentLogger, { NODEWARDEN_SLACK_BOT_TOKEN: TOKEN });
    expect(s?.pager.name).to.equal('slack-api');
    expect(s?.approvals).to.not.equal(null);
  });

  it('an approval request is a message with Approve/Deny; the button decides; the message is edited after', async () => {
    const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
    const pstore = new MemoryDocStore(clock);
    const approvals = new Approvals(pstore, clock);
    const notifier = createSlackApprovalNotifier(opts({ store: pstore }));
    const runs: Decision[] = [];
    const r = createRemediator({
      guard: createMemoryGuard({ view: FakeCluster.fleet(20, ['h100-train']), options: guardOptionsFromConfig(DEFAULT_CONFIG), clock }),
      executors: [{ actions: ['rollback'], execute: (d) => { runs.push(d); return Promise.resolve({ ok: true }); } }, createPagerExecutor({ pagers: [createRecordingPager()], logger: silentLogger })],
      ledger: [],
      clock,
      logger: silentLogger,
      autoFlush: false,
      approvals,
      onApprovalRequested: (a) => notifier.requested(a),
      onApprovalDecided: (a) => notifier.decided(a),
    });
    const d: Decision = { id: 'd-rb-1', at: clock.now(), rule: 'driver-regression', action: 'rollback', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver' }, reason: 'Xids after a rollout', severity: 'critical', group: { pool: 'h100-train' } };
    await r.submit([d]);
    expect(rx.rejected, JSON.stringify(rx.rejected)).to.deep.equal([]);
    const [msg] = [...rx.messages.values()];
    const actions = msg?.blocks?.find((b) => (b as { type: string }).type === 'actions') as { elements: Array<{ action_id: string; value: string }> } | undefined;
    const approve = actions?.elements.find((e) => e.action_id === 'nodewarden_approve');
    expect(approve?.value).to.equal('d-rb-1');
    const slack = createSlackInteractivity({ signingSecret: 's3cret', approvals, store: pstore, clock, logger: silentLogger, metrics: webhookMetrics(createRegistry('slack-api-test')) });
    const req = slackButtonRequest({ actionId: approve?.action_id ?? '', value: approve?.value ?? '', user: 'ann', secret: 's3cret', timestampSec: Math.floor(clock.now() / 1000) });
    expect((await slack.handle(Buffer.from(req.body), req.headers)).body.text).to.equal('approved by ann');
    await r.submit([]);
    expect(runs).to.have.length(1);
    expect(rx.calls.map((c) => c.method)).to.deep.equal(['chat.postMessage', 'chat.update']);
    const edited = rx.messages.get(`${rx.channelId}/${msg?.ts ?? ''}`);
    expect(edited?.text).to.match(/approved by ann \(slack\)/);
    expect(edited?.blocks?.some((b) => (b as { type: string }).type === 'actions')).to.equal(false);
  });
});
