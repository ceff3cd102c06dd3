/**
 * Paging across two engine processes on a REAL broker and Redis: a storm
 * whose events are split between the replicas yields exactly ONE incident
 * (one trigger; every other page joins it with the same dedupKey), and a
 * PagerDuty acknowledgement received by one replica holds the actions of the
 * incident's group on both.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { produce, replicaPairSuite, waitFor, xid } from './engine-support.js';

const SECRET = 'pd-webhook-secret-for-the-test';
const INCIDENT = 'nodewarden/incident/test-xid-fatal/pool=h100-train';

describe('paging across two engine replicas (Kafka + Redis)', function () {
  this.timeout(180_000);
  const rp = replicaPairSuite('pag', {
    setup: () => {
      process.env.NODEWARDEN_PAGERDUTY_WEBHOOK_SECRET = SECRET;
      return { incidents: { pagerdutyWebhook: { secretFile: null, secretEnv: 'NODEWARDEN_PAGERDUTY_WEBHOOK_SECRET', maxAge: '10m' } } };
    },
  });

  const pages = (): Array<Record<string, unknown>> => rp.ledger.records.filter((r) => r.action === 'page' && r.rule === 'test-xid-fatal');

  it('a storm split across both replicas is one incident: one trigger, the rest join it', async () => {
    const nodes = Array.from({ length: 12 }, (_, i) => `gpu-node-0${30 + i}`);
    const before = await Promise.all(rp.engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
    await produce(rp.brokers, rp.topics.signals, nodes.map((n) => ({ key: n, value: xid(n, 79) })));
    await waitFor('a page record for every node', () => pages().filter((r) => (r.target as { kind: string }).kind === 'Node').length >= nodes.length, 90_000);
    const after = await Promise.all(rp.engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
    expect(after.map((n, i) => n - (before[i] ?? 0)).every((n) => n > 0), `storm events per replica: ${after.map((n, i) => n - (before[i] ?? 0)).join(', ')}`).to.equal(true);
    const nodePages = pages().filter((r) => (r.target as { kind: string }).kind === 'Node');
    const triggers = nodePages.filter((r) => r.outcome === 'executed');
    expect(triggers, JSON.stringify(nodePages.map((r) => [r.outcome, r.guard]))).to.have.length(1);
    expect(nodePages.filter((r) => r.outcome === 'suppressed' && r.guard === 'incidentOpen')).to.have.length(nodes.length - 1);
    expect(new Set(pages().map((r) => r.dedupKey))).to.deep.equal(new Set([INCIDENT]));
  });

  it('an acknowledgement received by one replica holds the group’s actions on both', async () => {
    const body = JSON.stringify({
      event: { id: randomUUID(), event_type: 'incident.acknowledged', resource_type: 'incident', occurred_at: new Date().toISOString(), agent: { id: 'PLH1HKV', summary: 'Tenex Engineer', type: 'user_reference' }, client: { name: 'PagerDuty' }, data: { id: 'PGR0VU2', type: 'incident', incident_key: INCIDENT, status: 'acknowledged' } },
    });
    const sig = `v1=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const res = await fetch(`${rp.engines[0]!.url}/webhooks/pagerduty`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-pagerduty-signature': sig }, body });
    expect(res.status, await res.clone().text()).to.equal(200);
    const again = await fetch(`${rp.engines[1]!.url}/webhooks/pagerduty`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-pagerduty-signature': sig }, body });
    expect(again.status, 'the same event on the other replica is a replay').to.equal(409);
    await waitFor('the acknowledgement in the ledger', () => rp.ledger.records.some((r) => r.guard === 'incidentAcknowledged' && (r.details as { by?: string } | undefined)?.by === 'Tenex Engineer'), 30_000);
    const later = Array.from({ length: 8 }, (_, i) => `gpu-node-0${60 + i}`);
    await produce(rp.brokers, rp.topics.signals, later.map((n) => ({ key: n, value: xid(n, 79) })));
    const cordons = (): Array<Record<string, unknown>> => rp.ledger.records.filter((r) => r.action === 'cordon' && later.includes((r.target as { name: string }).name));
    await waitFor('a cordon record for every later node', () => cordons().length >= later.length, 90_000);
    expect(cordons().map((r) => r.guard)).to.deep.equal(later.map(() => 'incidentAcknowledged'));
  });
});
