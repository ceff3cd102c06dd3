import http from 'node:http';
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { isConsolePath } from '../../../control/console-assets.js';
import { EngineHttpServer } from '../../../control/server.js';
import { parseTokens } from '../../../control/tokens.js';
import { fakeBackend } from './fake-backend.js';

const ADMIN = 'adm1n-t0ken-0123456789abcdef';
const READER = 'read0nly-t0ken-0123456789abcd';
const T0 = Date.parse('2026-11-21T10:00:00.000Z');

describe('control: engine HTTP server', () => {
  let server: EngineHttpServer;
  let base: string;
  let fb: ReturnType<typeof fakeBackend>;
  let ready = true;
  const clock = new ManualClock(T0);

  before(async () => {
    fb = fakeBackend(clock);
    const registry = createRegistry('engine');
    registry.registerMetric(new (await import('prom-client')).Counter({ name: 'nodewarden_engine_test_total', help: 'x' }));
    server = new EngineHttpServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      readiness: () => Promise.resolve({ ready, checks: { consumer: { ok: ready }, redis: { ok: true } } }),
      control: { backend: fb.backend, tokens: parseTokens(`${ADMIN} admin alice\n${READER} read-only grafana\n`, 'tokens') },
      clock,
      logger: silentLogger,
    });
    const a = await server.listen();
    base = `http://127.0.0.1:${a.port}`;
  });
  after(() => server.close());

  async function call(method: string, path: string, opts: { token?: string; body?: string; ct?: string } = {}) {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers['content-type'] = opts.ct ?? 'application/json';
    const res = await fetch(base + path, { method, headers, body: opts.body });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json: json as Record<string, never>, text, headers: res.headers };
  }

  it('serves /metrics, /healthz and /readyz without a token', async () => {
    const m = await call('GET', '/metrics');
    expect(m.status).to.equal(200);
    expect(m.text).to.contain('nodewarden_engine_test_total');
    expect((await call('GET', '/healthz')).status).to.equal(200);
    expect((await call('GET', '/readyz')).status).to.equal(200);
    ready = false;
    const r = await call('GET', '/readyz');
    ready = true;
    expect(r.status).to.equal(503);
    expect(r.json).to.deep.include({ status: 'not ready' });
  });

  it('nothing but /metrics, /healthz, /readyz and the console\'s static files answers without a token, whatever the path or method', async () => {
    // Raw requests: fetch would normalise dot segments and double slashes away.
    const raw = (method: string, path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request(`${base}/`, { method, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    const examples = server.routeTable().map((r) => r.example.replace('{id}', 'test-xid-fatal'));
    const paths = [
      ...examples,
      ...examples.map((e) => `${e}?x=1`),
      '/', '/debug', '/admin', '/api', '/api/', '/api/v2/rules', '/API/v1/rules', '//api/v1/rules', '/api/v1/../v1/pause',
      '/metrics/../api/v1/pause', '/healthz/../api/v1/resume', '/api/v1/rules/%2e%2e/pause', '/api/v1/rules/..%2fpause/disable', '/%61pi/v1/rules',
    ];
    const open: string[] = [];
    for (const path of paths)
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
        const status = await raw(method, path);
        // The console's files (HTML, script, style) hold no data: the page asks for a token and calls the API with it.
        const publicFile = isConsolePath(new URL(path, 'http://x').pathname) && (method === 'GET' || method === 'HEAD');
        if (status !== 401 && status !== 404 && status !== 405 && !publicFile) open.push(`${method} ${path}: ${status}`);
        if (path.startsWith('/api/') && status !== 401) open.push(`${method} ${path}: ${status} (not authenticated first)`);
      }
    expect(open).to.deep.equal([]);
    expect(fb.guard.paused, 'no unauthenticated pause got through').to.equal(null);
    expect(fb.audit.entries, 'no unauthenticated toggle got through').to.deep.equal([]);
  });

  it('401 without a token or with a bad one; 403 for read-only on mutating calls', async () => {
    const none = await call('GET', '/api/v1/rules');
    expect(none.status).to.equal(401);
    expect(none.json).to.deep.equal({ error: { code: 'UNAUTHORIZED', message: 'missing bearer token (send "Authorization: Bearer <token>")', problems: [] } });
    expect(none.headers.get('www-authenticate')).to.contain('Bearer');
    const bad = await call('GET', '/api/v1/rules', { token: ADMIN + 'x' });
    expect(bad.status).to.equal(401);
    expect(bad.json).to.deep.equal({ error: { code: 'UNAUTHORIZED', message: 'invalid token', problems: [] } });
    // Unknown routes are not revealed to anonymous callers either.
    expect((await call('GET', '/api/v1/secret')).status).to.equal(401);

    const ro = await call('POST', '/api/v1/pause', { token: READER, body: '{"reason":"x"}' });
    expect(ro.status).to.equal(403);
    expect(ro.json.error).to.deep.include({ code: 'FORBIDDEN' });
    expect(fb.guard.paused).to.equal(null);
    expect((await call('GET', '/api/v1/guard', { token: READER })).status).to.equal(200);
  });

  it('lists rules with file, runtime and effective state; disable with TTL takes effect and records the audit', async () => {
    const d = await call('POST', '/api/v1/rules/gpu-xid-fatal/disable', { token: ADMIN, body: '{"reason":"bad firmware rollout","ttl":"2s"}' });
    expect(d.status).to.equal(200);
    const list = await call('GET', '/api/v1/rules', { token: READER });
    const rules = (list.json as unknown as { rules: Array<{ id: string; fileEnabled: boolean; effective: boolean; toggle: { by: string; expiresAt: number } | null }> }).rules;
    const r = rules.find((x) => x.id === 'gpu-xid-fatal')!;
    expect(r).to.deep.include({ fileEnabled: true, effective: false });
    expect(r.toggle).to.deep.include({ by: 'alice', expiresAt: T0 + 2000 });
    expect(rules.find((x) => x.id === 'conntrack-full')).to.deep.include({ fileEnabled: false, effective: false, toggle: null });
    expect(fb.audit.entries).to.have.length(1);
    expect(fb.audit.entries[0]).to.include({ kind: 'rule-toggle', rule: 'gpu-xid-fatal', enabled: false, by: 'alice' });
    clock.advance(2000);
    const after = await call('GET', '/api/v1/rules', { token: READER });
    expect((after.json as unknown as { rules: Array<{ id: string; effective: boolean }> }).rules.find((x) => x.id === 'gpu-xid-fatal')!.effective).to.equal(true);
  });

  it('answers every malformed request with 400 and precise problems', async () => {
    const noReason = await call('POST', '/api/v1/rules/gpu-xid-fatal/disable', { token: ADMIN, body: '{"ttl":"1h"}' });
    expect(noReason.status).to.equal(400);
    expect(noReason.json).to.deep.equal({ error: { code: 'REQUEST_INVALID', message: 'invalid request body', problems: [{ path: '/reason', message: 'is required' }] } });
    const notJson = await call('POST', '/api/v1/pause', { token: ADMIN, body: '{reason' });
    expect(notJson.status).to.equal(400);
    expect(notJson.json.error).to.deep.include({ code: 'REQUEST_INVALID', message: 'request body is not valid JSON' });
    const wrongCt = await call('POST', '/api/v1/pause', { token: ADMIN, body: 'reason=x', ct: 'application/x-www-form-urlencoded' });
    expect(wrongCt.status).to.equal(400);
    const emptyPause = await call('POST', '/api/v1/pause', { token: ADMIN });
    expect(emptyPause.status).to.equal(400);
    const q = await call('GET', '/api/v1/ledger?limit=abc', { token: READER });
    expect(q.status).to.equal(400);
    expect(q.json.error).to.deep.include({ problems: [{ path: '?limit', message: 'must be an integer from 1 to 1000' }] });
    const big = await call('POST', '/api/v1/pause', { token: ADMIN, body: JSON.stringify({ reason: 'x'.repeat(70_000) }) });
    expect(big.status).to.equal(413);
    const unknownRule = await call('POST', '/api/v1/rules/nope/enable', { token: ADMIN, body: '{"reason":"x"}' });
    expect(unknownRule.status).to.equal(404);
    const method = await call('DELETE', '/api/v1/rules', { token: ADMIN });
    expect(method.status).to.equal(405);
    expect(method.headers.get('allow')).to.equal('GET');
  });

  it('pause and resume go to the guard, by the token holder', async () => {
    expect((await call('POST', '/api/v1/pause', { token: ADMIN, body: '{"reason":"incident 42"}' })).status).to.equal(200);
    expect(fb.guard.paused).to.deep.include({ reason: 'incident 42', by: 'alice' });
    const g = await call('GET', '/api/v1/guard', { token: READER });
    expect(g.json).to.deep.include({ paused: { reason: 'incident 42', by: 'alice', at: clock.now() } });
    expect((await call('POST', '/api/v1/resume', { token: ADMIN })).status).to.equal(200);
    expect(fb.guard.paused).to.equal(null);
  });

  it('serves the ledger with filters, newest first', async () => {
    await fb.ledger.append([
      { ts: '2026-11-21T10:00:01.000Z', rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: 'n1' }, outcome: 'executed', reason: 'x', guard: null },
      { ts: '2026-11-21T10:00:02.000Z', rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: 'n2' }, outcome: 'denied', reason: 'y', guard: 'paused' },
      { ts: '2026-11-21T10:00:03.000Z', kind: 'rule-toggle', rule: 'gpu-xid-fatal', enabled: false, reason: 'z', by: 'alice', expiresAt: null },
    ]);
    const all = await call('GET', '/api/v1/ledger?since=2026-11-21T10:00:01Z&until=2026-11-21T10:00:04Z', { token: READER });
    // the pause and resume of the test above are audited at 10:00:02 too
    expect((all.json as unknown as { records: Array<{ ts: string; kind?: string; outcome?: string }> }).records.map((r) => `${r.ts} ${r.kind ?? r.outcome ?? ''}`)).to.deep.equal([
      '2026-11-21T10:00:03.000Z rule-toggle',
      '2026-11-21T10:00:02.000Z guard-pause',
      '2026-11-21T10:00:02.000Z guard-resume',
      '2026-11-21T10:00:02.000Z denied',
      '2026-11-21T10:00:01.000Z executed',
    ]);
    const denied = await call('GET', '/api/v1/ledger?outcome=denied&node=n2', { token: READER });
    expect((denied.json as unknown as { records: Array<{ guard: string }> }).records).to.have.length(1);
  });
});
