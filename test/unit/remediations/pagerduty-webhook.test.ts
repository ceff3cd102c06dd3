/**
 * PagerDuty v3 webhooks into the engine's HTTP endpoint: signature (and
 * rotation), replays and stale events rejected and counted, acknowledge
 * holds the incident's group, resolve is recorded, each naming who.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import type { LedgerRecord } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import type { Registry } from '../../../adapters/metrics.js';
import { EngineHttpServer } from '../../../control/server.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import { createIncidentPaging } from '../../../remediations/incidents/incident-paging.js';
import type { IncidentPaging } from '../../../remediations/incidents/incident-paging.js';
import { createPagerDutyWebhook } from '../../../remediations/webhooks/pagerduty-webhook.js';
import { webhookMetrics } from '../../../remediations/webhooks/metrics.js';
import { nodePage } from '../../contract/paging-store.js';
import { pdIncidentEvent, pdSignature } from '../../receivers/pagerduty-webhooks.js';

const KEY = 'nodewarden/incident/gpu-xid-fatal/pool=h100-train';
const SECRET = 'whsec-current-0123456789';
const OLD = 'whsec-previous-9876543210';

describe('PagerDuty v3 webhooks (engine HTTP endpoint)', () => {
  let server: EngineHttpServer;
  let base = '';
  let clock: ManualClock;
  let incidents: IncidentPaging;
  let records: LedgerRecord[];
  let registry: Registry;

  beforeEach(async () => {
    clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
    const store = new MemoryDocStore(clock);
    incidents = createIncidentPaging({ store, clock });
    records = [];
    registry = createRegistry('webhook-test');
    const hook = createPagerDutyWebhook({
      secrets: [SECRET],
      incidents,
      store,
      record: (rs) => {
        records.push(...rs);
        return Promise.resolve();
      },
      clock,
      logger: silentLogger,
      metrics: webhookMetrics(registry),
    });
    server = new EngineHttpServer({ host: '127.0.0.1', port: 0, registry, readiness: () => Promise.resolve({ ready: true, checks: {} }), webhooks: { pagerduty: (b, h) => hook.handle(b, h) }, clock, logger: silentLogger });
    base = `http://127.0.0.1:${(await server.listen()).port}`;
    await incidents.route(nodePage('h100-001'));
  });
  afterEach(() => server.close());

  const post = async (body: string, signature: string | null): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${base}/webhooks/pagerduty`, { method: 'POST', headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'x-pagerduty-signature': signature }) }, body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const counted = async (result: string): Promise<number> => {
    const m = await registry.getSingleMetric('nodewarden_webhook_requests_total')?.get();
    return m?.values.find((v) => v.labels.result === result && v.labels.source === 'pagerduty')?.value ?? 0;
  };

  it('acknowledge: verified, recorded with who, and the group’s actions are held', async () => {
    const e = pdIncidentEvent({ type: 'incident.acknowledged', incidentKey: KEY, occurredAt: new Date(clock.now()), by: 'Tenex Engineer' });
    const r = await post(e.body, pdSignature(e.body, [SECRET]));
    expect(r.status).to.equal(200);
    expect(r.json).to.include({ result: 'accepted', event: 'acknowledged' });
    expect(records).to.have.length(1);
    expect(records[0]).to.include({ action: 'page', outcome: 'suppressed', guard: 'incidentAcknowledged', dedupKey: KEY });
    expect(records[0]?.details).to.include({ by: 'Tenex Engineer', via: 'pagerduty', incidentEvent: 'acknowledged' });
    expect((await incidents.heldBy({ ...nodePage('h100-009'), action: 'cordon' }))?.ack?.by).to.equal('Tenex Engineer');
    expect(await counted('accepted')).to.equal(1);
  });

  it('accepts any valid signature during a secret rotation (old and new in one header)', async () => {
    const e = pdIncidentEvent({ type: 'incident.acknowledged', incidentKey: KEY, occurredAt: new Date(clock.now()), by: 'Ann' });
    const r = await post(e.body, pdSignature(e.body, [OLD, SECRET]));
    expect(r.status).to.equal(200);
  });

  it('rejects and counts bad signatures, stale events and replays; nothing is recorded or held', async () => {
    const e = pdIncidentEvent({ type: 'incident.acknowledged', incidentKey: KEY, occurredAt: new Date(clock.now()), by: 'Mallory' });
    expect((await post(e.body, pdSignature(e.body, [OLD]))).status).to.equal(401);
    expect((await post(e.body, null)).status).to.equal(401);
    expect((await post(`${e.body} `, pdSignature(e.body, [SECRET]))).status, 'a body changed after signing').to.equal(401);
    const stale = pdIncidentEvent({ type: 'incident.acknowledged', incidentKey: KEY, occurredAt: new Date(clock.now() - 3_600_000), by: 'Mallory' });
    expect((await post(stale.body, pdSignature(stale.body, [SECRET]))).status).to.equal(400);
    expect(records).to.have.length(0);
    expect(await incidents.heldBy({ ...nodePage('h100-009'), action: 'cordon' })).to.equal(null);
    expect((await post(e.body, pdSignature(e.body, [SECRET]))).status).to.equal(200);
    const replay = await post(e.body, pdSignature(e.body, [SECRET]));
    expect(replay.status).to.equal(409);
    expect(records).to.have.length(1);
    expect(await counted('bad_signature')).to.equal(3);
    expect(await counted('stale')).to.equal(1);
    expect(await counted('replay')).to.equal(1);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).to.match(/nodewarden_webhook_requests_total\{[^}]*source="pagerduty"[^}]*result="replay"[^}]*\} 1/);
  });

  it('a field of the wrong type is a malformed event (400), never "[object Object]" in the ledger', async () => {
    // Before: agent.summary {…} was accepted and recorded as "by [object Object]".
    const e = pdIncidentEvent({ type: 'incident.acknowledged', incidentKey: KEY, occurredAt: new Date(clock.now()), by: 'Ann' });
    const doc = JSON.parse(e.body) as { event: { agent: Record<string, unknown>; data: Record<string, unknown> } };
    doc.event.agent.summary = { name: 'Ann' };
    const body = JSON.stringify(doc);
    const r = await post(body, pdSignature(body, [SECRET]));
    expect(r.status).to.equal(400);
    expect(JSON.stringify(r.json)).to.include('/event/agent/summary must be string or null');
    const key = JSON.parse(e.body) as { event: { id: string; data: Record<string, unknown> } };
    key.event.id = 'other-id';
    key.event.data.incident_key = ['not', 'a', 'key'];
    const body2 = JSON.stringify(key);
    expect((await post(body2, pdSignature(body2, [SECRET]))).status).to.equal(400);
    const long = JSON.parse(e.body) as { event: { id: string; agent: Record<string, unknown> } };
    long.event.id = 'long-name';
    long.event.agent.summary = 'A'.repeat(10_000);
    const body3 = JSON.stringify(long);
    const r3 = await post(body3, pdSignature(body3, [SECRET]));
    expect(r3.status, 'a 10,000-character name is not recorded').to.equal(400);
    expect(JSON.stringify(r3.json)).to.include('/event/agent/summary must be at most 256 characters');
    for (const bad of ['null', '[]', '{"event": null}', '{"event": {"id": "", "event_type": "x", "occurred_at": "2026-11-21T10:00:00Z"}}']) expect((await post(bad, pdSignature(bad, [SECRET]))).status, bad).to.equal(400);
    expect(records).to.have.length(0);
    expect(await incidents.heldBy({ ...nodePage('h100-009'), action: 'cordon' })).to.equal(null);
    expect(await counted('malformed')).to.equal(7);
  });

  it('resolve in PagerDuty is recorded naming who; unknown incidents and other event types are ignored', async () => {
    const e = pdIncidentEvent({ type: 'incident.resolved', incidentKey: KEY, occurredAt: new Date(clock.now()), by: 'Ann' });
    expect((await post(e.body, pdSignature(e.body, [SECRET]))).json).to.include({ result: 'accepted', event: 'resolved' });
    expect(records[0]).to.include({ action: 'resolve', outcome: 'executed', dedupKey: KEY });
    expect(records[0]?.reason).to.include('resolved in PagerDuty by Ann');
    expect((await incidents.get(KEY))?.status).to.equal('resolved');
    const other = pdIncidentEvent({ type: 'incident.priority_updated', incidentKey: KEY, occurredAt: new Date(clock.now()) });
    expect((await post(other.body, pdSignature(other.body, [SECRET]))).json).to.include({ result: 'ignored' });
    const unknown = pdIncidentEvent({ type: 'incident.acknowledged', incidentKey: 'someone-else', occurredAt: new Date(clock.now()) });
    expect((await post(unknown.body, pdSignature(unknown.body, [SECRET]))).json).to.include({ result: 'ignored' });
    expect(records).to.have.length(1);
  });
});
