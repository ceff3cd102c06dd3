import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import type { LedgerRecord } from '../../../core/decision.js';
import type { LedgerEntry } from '../../../remediations/ledger/entry.js';
import type { EngineHttpServer } from '../../../control/server.js';
import { consoleDir, CONSOLE_CSP } from '../../../control/console-assets.js';
import { nodeViews } from '../../../control/nodes.js';
import { renderLedger } from '../../../control/render.js';
import { createControlBackend } from '../../../control/backend.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { startControlServer } from '../../harness/control-server.js';
import { FakeGuard, FAKE_NODES, fakeBackend } from './fake-backend.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import { ToggleService } from '../../../rules/toggles/toggle-service.js';

const ADMIN = 'adm1n-t0ken-0123456789abcdef';
const READER = 'read0nly-t0ken-0123456789abcd';
const T0 = Date.parse('2026-11-21T10:00:00.000Z');

const rec = (ts: number, node: string, outcome: LedgerRecord['outcome'], guard: LedgerRecord['guard'] = null): LedgerRecord => ({
  ts: new Date(ts).toISOString(),
  rule: 'gpu-xid-fatal',
  action: 'cordon',
  target: { kind: 'Node', name: node },
  outcome,
  reason: `xid on ${node}`,
  guard,
});

describe('control: the operator console', () => {
  describe('node views (the fleet strip)', () => {
    it('derives one state per node, the newest decision wins, grouped by the group label', () => {
      const entries = [rec(T0 + 3, 'n1', 'denied', 'maxUnavailable'), rec(T0 + 2, 'n2', 'executed'), rec(T0 + 1, 'n1', 'executed')];
      const views = nodeViews(FAKE_NODES, entries, 'nodewarden.io/pool');
      expect(views.map((v) => [v.name, v.group, v.state])).to.deep.equal([
        ['n3', 'a100-train', 'cordoned-by-person'],
        ['n1', 'h100-train', 'denied'],
        ['n2', 'h100-train', 'cordoned-by-nodewarden'],
        ['n4', null, 'not-ready'],
      ]);
      expect(views.find((v) => v.name === 'n1')?.lastDecision).to.deep.include({ outcome: 'denied', guard: 'maxUnavailable', action: 'cordon' });
      expect(views.find((v) => v.name === 'n3')?.lastDecision).to.equal(null);
    });

    it('a node whose denial was followed by an executed decision is no longer "denied"; audits and other targets are ignored', () => {
      const entries: LedgerEntry[] = [
        { ts: new Date(T0 + 9).toISOString(), kind: 'guard-pause' as const, reason: 'x', by: 'alice' },
        { ...rec(T0 + 8, 'n1', 'executed'), action: 'page' as const, target: { kind: 'Group' as const, name: 'pool=h100-train' } },
        rec(T0 + 5, 'n1', 'executed'),
        rec(T0 + 4, 'n1', 'denied', 'maxUnavailable'),
      ];
      const n1 = nodeViews(FAKE_NODES, entries, 'nodewarden.io/pool').find((v) => v.name === 'n1');
      expect(n1?.state).to.equal('healthy');
      expect(n1?.lastDecision?.ts).to.equal(new Date(T0 + 5).toISOString());
    });
  });

  describe('served by the engine HTTP server', () => {
    let server: EngineHttpServer;
    let base: string;
    let fb: ReturnType<typeof fakeBackend>;
    const clock = new ManualClock(T0);

    before(async () => {
      fb = fakeBackend(clock);
      ({ server, base } = await startControlServer(fb.backend, `${ADMIN} admin alice\n${READER} read-only grafana\n`, clock));
    });
    after(() => server.close());

    const get = (path: string, token?: string, method = 'GET'): Promise<Response> => fetch(base + path, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });

    it('serves the page and its two assets without a token, each with a strict CSP', async () => {
      for (const [path, type] of [
        ['/', 'text/html'],
        ['/console/app.js', 'text/javascript'],
        ['/console/app.css', 'text/css'],
      ] as const) {
        const res = await get(path);
        expect(res.status, path).to.equal(200);
        expect(res.headers.get('content-type')).to.include(type);
        expect(res.headers.get('content-security-policy')).to.equal(CONSOLE_CSP);
        expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
        expect(res.headers.get('referrer-policy')).to.equal('no-referrer');
        const etag = res.headers.get('etag') ?? '';
        expect(etag).to.match(/^"[\w-]{22}"$/);
        const again = await fetch(base + path, { headers: { 'if-none-match': etag } });
        expect(again.status).to.equal(304);
      }
      expect(CONSOLE_CSP).to.include("script-src 'self'").and.include("default-src 'none'").and.not.include('unsafe');
      expect((await get('/', undefined, 'POST')).status).to.equal(405);
      expect((await get('/console/other.js')).status).to.equal(404);
      expect((await get('/index.html')).status).to.equal(404);
    });

    it('the shipped page has no inline script or handler and never writes HTML from data', () => {
      const html = readFileSync(join(consoleDir(), 'index.html'), 'utf8');
      expect(html).to.not.match(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html).to.not.match(/\son[a-z]+\s*=/i);
      expect(html).to.not.match(/https?:\/\//); // nothing from another origin
      const js = readFileSync(join(consoleDir(), 'app.js'), 'utf8');
      expect(js).to.not.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|localStorage/);
      expect(js).to.include('sessionStorage');
    });

    it('whoami tells name, role and what the API offers; 401 without a valid token', async () => {
      expect(await (await get('/api/v1/whoami', READER)).json()).to.deep.equal({ name: 'grafana', role: 'read-only', features: { nodes: true, incidents: false } });
      expect(await (await get('/api/v1/whoami', ADMIN)).json()).to.deep.include({ name: 'alice', role: 'admin' });
      expect((await get('/api/v1/whoami')).status).to.equal(401);
      expect((await get('/api/v1/whoami', 'not-a-valid-token-0123456789')).status).to.equal(401);
    });

    it('lists nodes with their state and last decision, for any valid token', async () => {
      await fb.ledger.append([rec(T0 - 1000, 'n1', 'denied', 'maxUnavailable')]);
      const res = await get('/api/v1/nodes', READER);
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { nodes: Array<{ name: string; state: string; lastDecision: { guard: string } | null }> };
      expect(body.nodes.map((n) => `${n.name}:${n.state}`)).to.deep.equal(['n3:cordoned-by-person', 'n1:denied', 'n2:cordoned-by-nodewarden', 'n4:not-ready']);
      expect(body.nodes[1]?.lastDecision?.guard).to.equal('maxUnavailable');
      expect((await get('/api/v1/nodes')).status).to.equal(401);
      expect((await get('/api/v1/nodes?x=1', READER)).status).to.equal(400);
    });

    it('guard shows the dry-run flag; pause and resume are audited in the ledger under the token name', async () => {
      expect(await (await get('/api/v1/guard', READER)).json()).to.deep.include({ dryRun: false });
      const post = (path: string, body: unknown): Promise<Response> =>
        fetch(base + path, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await post('/api/v1/pause', { reason: 'console: incident 7' })).status).to.equal(200);
      clock.advance(1000);
      expect((await post('/api/v1/resume', { reason: 'storm over' })).status).to.equal(200);
      const ledger = (await (await get('/api/v1/ledger?limit=2', READER)).json()) as { records: unknown[] };
      expect(ledger.records).to.deep.equal([
        { ts: new Date(T0 + 1000).toISOString(), kind: 'guard-resume', reason: 'storm over', by: 'alice' },
        { ts: new Date(T0).toISOString(), kind: 'guard-pause', reason: 'console: incident 7', by: 'alice' },
      ]);
      expect(fb.audit.entries.filter((r) => 'kind' in r && r.kind !== 'rule-toggle')).to.have.length(2);
      // filters: a pause has no rule, node or outcome
      expect(((await (await get('/api/v1/ledger?rule=gpu-xid-fatal', READER)).json()) as { records: Array<{ kind?: string }> }).records.some((r) => r.kind === 'guard-pause')).to.equal(false);
      // and ctl shows it
      expect(renderLedger(ledger.records as never)).to.match(/pause\s+Guard.*console: incident 7 \[by alice\]/);
    });

    it('without a cluster view, /api/v1/nodes is 404 and whoami says so', async () => {
      const toggles = new MemoryRuleToggles(clock);
      const backend = createControlBackend({ rules: [], toggles, toggleService: new ToggleService(toggles, new MemoryLedger(), clock), guard: new FakeGuard(clock), ledger: new MemoryLedger(), clock });
      const { server: s, base: b } = await startControlServer(backend, `${READER} read-only grafana\n`, clock);
      try {
        const h = { authorization: `Bearer ${READER}` };
        expect((await fetch(`${b}/api/v1/nodes`, { headers: h })).status).to.equal(404);
        expect(await (await fetch(`${b}/api/v1/whoami`, { headers: h })).json()).to.deep.include({ features: { nodes: false, incidents: false } });
      } finally {
        await s.close();
      }
    });
  });
});
