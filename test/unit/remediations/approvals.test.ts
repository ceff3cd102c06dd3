/**
 * Approval where it matters: a rollback waits for a person; the Slack button
 * (signed, replay-checked) or the control API decides; the approved decision
 * runs exactly once even when the replica that asked is gone; a timeout
 * denies (and pages, like every denial); a held acknowledgement suppresses.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import { Approvals } from '../../../remediations/approvals/approvals.js';
import type { Approval } from '../../../remediations/approvals/approvals.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import type { Remediator } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import type { ExecutionResult, Executor } from '../../../remediations/ports.js';
import { createSlackInteractivity, APPROVE_ACTION, DENY_ACTION } from '../../../remediations/webhooks/slack-interactivity.js';
import { webhookMetrics } from '../../../remediations/webhooks/metrics.js';
import { FakeCluster } from './fake-cluster.js';
import { slackButtonRequest, slackSignedPayload } from '../../receivers/slack-interactivity.js';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const SECRET = 'slack-signing-secret-123';

function rollback(id = 'd-rb-1'): Decision {
  return { id, at: T0, rule: 'gpu-driver-rollout-regression', action: 'rollback', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' }, reason: 'Xids on 3 nodes after a driver rollout', severity: 'critical', params: { toRevision: 3 }, group: { pool: 'h100-train' } };
}

describe('approvals', () => {
  let clock: ManualClock;
  let store: MemoryDocStore;
  let runs: Decision[];
  let records: LedgerRecord[];
  let requested: Approval[];
  const executor: Executor = {
    actions: ['rollback'],
    execute(d): Promise<ExecutionResult> {
      runs.push(d);
      return Promise.resolve({ ok: true, toRevision: 3 });
    },
  };
  const view = FakeCluster.fleet(20, ['h100-train']);

  beforeEach(() => {
    clock = new ManualClock(T0);
    store = new MemoryDocStore(clock);
    runs = [];
    records = [];
    requested = [];
  });

  /** One engine replica: its own guard object over shared state is not needed here (approvals are the point). */
  function replica(approvals: Approvals, guard = createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock })): Remediator {
    return createRemediator({
      guard,
      executors: [executor, createPagerExecutor({ pagers: [createRecordingPager()], logger: silentLogger })],
      ledger: [{ name: 'test', append: (rs: readonly LedgerRecord[]) => { records.push(...rs); return Promise.resolve(); } }],
      clock,
      logger: silentLogger,
      autoFlush: false,
      approvals,
      onApprovalRequested: (a) => { requested.push(a); return Promise.resolve(); },
    });
  }

  it('a rollback waits for approval; approved via Slack on another replica after the first is gone, it runs exactly once', async () => {
    const guard = createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock });
    const a = replica(new Approvals(store, clock), guard);
    const [first] = (await a.submit([rollback()])).records;
    expect(first).to.include({ outcome: 'pending-approval', action: 'rollback' });
    expect(requested).to.have.length(1);
    // the same decision redelivered does not ask twice
    await a.submit([rollback()]);
    expect(requested).to.have.length(1);
    expect(runs).to.have.length(0);
    // replica a is killed; the on-call presses Approve; replica b (and c, racing) pick it up
    const registry = createRegistry('slack-test');
    const slack = createSlackInteractivity({ signingSecret: SECRET, approvals: new Approvals(store, clock), store, clock, logger: silentLogger, metrics: webhookMetrics(registry) });
    const req = slackButtonRequest({ actionId: APPROVE_ACTION, value: 'd-rb-1', user: 'ann', secret: SECRET, timestampSec: Math.floor(clock.now() / 1000) });
    const res = await slack.handle(Buffer.from(req.body), req.headers);
    expect(res.status).to.equal(200);
    expect(res.body.text).to.equal('approved by ann');
    const b = replica(new Approvals(store, clock), guard);
    const c = replica(new Approvals(store, clock), guard);
    await Promise.all([b.submit([]), c.submit([])]);
    expect(runs).to.have.length(1);
    const executed = records.filter((r) => r.action === 'rollback' && r.outcome === 'executed');
    expect(executed).to.have.length(1);
    expect(executed[0]?.details?.approval).to.deep.equal({ by: 'ann (slack)', via: 'slack' });
    await b.submit([rollback()]);
    expect(runs, 'a redelivery after execution does not run again').to.have.length(1);
  });

  /** A Slack endpoint over a pending rollback approval `d-rb-1`. */
  async function slackOverPendingRollback(name: string): Promise<{ registry: ReturnType<typeof createRegistry>; approvals: Approvals; slack: ReturnType<typeof createSlackInteractivity>; now: number }> {
    const registry = createRegistry(name);
    const approvals = new Approvals(store, clock);
    const slack = createSlackInteractivity({ signingSecret: SECRET, approvals, store, clock, logger: silentLogger, metrics: webhookMetrics(registry) });
    await replica(approvals).submit([rollback()]);
    return { registry, approvals, slack, now: Math.floor(clock.now() / 1000) };
  }

  it('Slack requests: bad signature, stale timestamp and replay are rejected and counted', async () => {
    const { registry, approvals, slack, now } = await slackOverPendingRollback('slack-test');
    const forged = slackButtonRequest({ actionId: APPROVE_ACTION, value: 'd-rb-1', user: 'mallory', secret: 'wrong', timestampSec: now });
    expect((await slack.handle(Buffer.from(forged.body), forged.headers)).status).to.equal(401);
    const stale = slackButtonRequest({ actionId: APPROVE_ACTION, value: 'd-rb-1', user: 'mallory', secret: SECRET, timestampSec: now - 6 * 60 });
    expect((await slack.handle(Buffer.from(stale.body), stale.headers)).status).to.equal(401);
    const deny = slackButtonRequest({ actionId: DENY_ACTION, value: 'd-rb-1', user: 'bob', secret: SECRET, timestampSec: now });
    expect((await slack.handle(Buffer.from(deny.body), deny.headers)).status).to.equal(200);
    expect((await slack.handle(Buffer.from(deny.body), deny.headers)).status).to.equal(409);
    const m = await registry.getSingleMetric('nodewarden_webhook_requests_total')?.get();
    const count = (result: string): number => m?.values.find((v) => v.labels.source === 'slack' && v.labels.result === result)?.value ?? 0;
    expect([count('bad_signature'), count('stale'), count('replay'), count('accepted')]).to.deep.equal([1, 1, 1, 1]);
    expect((await approvals.get('d-rb-1'))?.state).to.equal('denied');
  });

  it('Slack payloads that are not a block_actions object (payload=null, a list, wrong field types) are a clean 400', async () => {
    // Before: payload=null threw a TypeError out of the handler (a 500).
    const { approvals, slack, now } = await slackOverPendingRollback('slack-malformed-test');
    const valid = slackButtonRequest({ actionId: APPROVE_ACTION, value: 'd-rb-1', user: 'ann', secret: SECRET, timestampSec: now });
    const payload = JSON.parse(decodeURIComponent(valid.body.slice('payload='.length))) as Record<string, unknown>;
    const variants = ['null', '[]', '42', JSON.stringify({ ...payload, user: 'ann' }), JSON.stringify({ ...payload, actions: [{ action_id: APPROVE_ACTION, value: 7 }] }), JSON.stringify({ ...payload, user: { username: 'x'.repeat(10_000) } })];
    for (const [i, p] of variants.entries()) {
      const req = slackSignedPayload(p, SECRET, now - i);
      const r = await slack.handle(Buffer.from(req.body), req.headers);
      expect(r.status, p).to.equal(400);
      expect(JSON.stringify(r.body), p).to.include('malformed');
    }
    expect((await approvals.get('d-rb-1'))?.state).to.equal('pending');
  });

  it('Deny denies (and the denial pages); no answer within the timeout denies too', async () => {
    const approvals = new Approvals(store, clock, { timeoutMs: 60_000 });
    const r = replica(approvals);
    await r.submit([rollback('d-rb-deny'), rollback('d-rb-wait')]);
    await approvals.decide('d-rb-deny', 'denied', 'bob', 'ctl');
    clock.advance(61_000);
    await r.submit([]);
    await r.flush();
    const final = records.filter((x) => x.action === 'rollback' && x.outcome === 'denied');
    expect(final.map((x) => [x.decisionId, x.guard])).to.have.deep.members([
      ['d-rb-deny', 'approvalDenied'],
      ['d-rb-wait', 'approvalTimeout'],
    ]);
    expect(runs).to.have.length(0);
    expect(records.some((x) => x.action === 'page' && x.outcome === 'executed' && x.reason.includes('approval'))).to.equal(true);
  });

  it('`approval: none` on the rule action skips it; `approval: required` asks for any action', () => {
    const approvals = new Approvals(store, clock);
    expect(approvals.required({ ...rollback(), params: { approval: 'none' } })).to.equal(false);
    expect(approvals.required({ ...rollback(), action: 'cordon', params: { approval: 'required' } })).to.equal(true);
    expect(approvals.required({ ...rollback(), action: 'cordon' })).to.equal(false);
  });
});
