/**
 * The control API of a running engine (REAL broker + Redis), driven through
 * `nodewarden ctl`: a rule disabled with a TTL stops deciding at once and
 * comes back by itself; `ctl pause` turns every action into a denied ledger
 * record (guard `paused`) until `ctl resume`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { systemClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { EngineHttpServer } from '../../control/server.js';
import type { RouteInfo } from '../../control/server.js';
import { freePort } from '../harness/ports.js';
import { registerSecret } from '../harness/secrets.js';
import { sharedKafka, sharedRedis } from './servers.js';
import type { EngineProc } from './engine-support.js';
import { ctl, produce, sleep, startEngine, TopicFollower, uniqueTopics, waitFor, xid } from './engine-support.js';

const ADMIN = registerSecret('control admin token', `itest-admin-${randomBytes(16).toString('hex')}`);
const READER = registerSecret('control read-only token', `itest-reader-${randomBytes(16).toString('hex')}`);
/** Valid, but in nobody's tokens file. */
const STRANGER = registerSecret('unknown control token', `itest-stranger-${randomBytes(16).toString('hex')}`);

describe('control API: ctl against a running engine', function () {
  this.timeout(180_000);
  const topics = uniqueTopics('ctl');
  let brokers: string[];
  let engine: EngineProc | undefined;
  let ledger: TopicFollower;
  let env: Record<string, string>;

  before(async () => {
    const [kafka, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
    brokers = kafka.brokers;
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 2);
    const dir = mkdtempSync(join(tmpdir(), 'nw-ctl-'));
    const tokensFile = join(dir, 'tokens');
    writeFileSync(tokensFile, `# test tokens\n${ADMIN} admin alice\n${READER} read-only grafana\n`);
    engine = await startEngine({ brokers, redisUrl: redis.url, keyPrefix: `nwctl${process.pid}:`, groupId: `engine-${topics.signals}`, topics, tokensFile });
    env = { NODEWARDEN_SERVER: engine.url, NODEWARDEN_TOKEN: ADMIN };
    ledger = await new TopicFollower(brokers, topics.ledger).start();
  });

  after(async () => {
    await engine?.kill('SIGTERM');
    await ledger?.stop();
  });

  const recordsFor = (node: string) => ledger.records.filter((r) => (r.target as { name?: string } | undefined)?.name === node);

  it('ctl rules disable --ttl takes effect at once and expires by itself', async () => {
    const d = await ctl(['rules', 'disable', 'test-xid-fatal', '--reason', 'firmware rollout', '--ttl', '15s'], env);
    expect(d.stderr).to.equal('');
    expect(d.code).to.equal(0);
    expect(d.stdout).to.match(/^rule test-xid-fatal disabled until .* \(by alice: firmware rollout\)\n$/);
    const list = await ctl(['rules', 'list'], { ...env, NODEWARDEN_TOKEN: READER });
    expect(list.stdout.split('\n').find((l) => l.startsWith('test-xid-fatal '))).to.match(/enabled\s+disabled\s+disabled\s+\d+s\s+alice\s+firmware rollout/);

    await produce(brokers, topics.signals, [{ key: 'gpu-node-010', value: xid('gpu-node-010', 79) }]);
    await waitFor('the event to be processed', async () => (await engine!.metric('nodewarden_engine_events_processed_total')) >= 1, 30_000);
    await sleep(1000);
    expect(recordsFor('gpu-node-010')).to.deep.equal([]);
    // The toggle's audit record is on the ledger topic.
    const audit = ledger.records.find((r) => r.kind === 'rule-toggle');
    expect(audit).to.include({ rule: 'test-xid-fatal', enabled: false, reason: 'firmware rollout', by: 'alice' });

    await waitFor('the toggle to expire', async () => {
      const l = await ctl(['rules', 'list', '-o', 'json'], env);
      const r = (JSON.parse(l.stdout) as { rules: Array<{ id: string; effective: boolean; toggle: unknown }> }).rules.find((x) => x.id === 'test-xid-fatal');
      return r?.effective === true && r.toggle === null;
    }, 30_000, 200);
    await produce(brokers, topics.signals, [{ key: 'gpu-node-011', value: xid('gpu-node-011', 79) }]);
    const cordon = await waitFor('a cordon of gpu-node-011', () => recordsFor('gpu-node-011').find((r) => r.action === 'cordon'), 30_000);
    expect(cordon).to.include({ outcome: 'executed' });
  });

  it('ctl pause denies every action (guard paused) until ctl resume', async () => {
    const ro = await ctl(['pause', '--reason', 'x'], { ...env, NODEWARDEN_TOKEN: READER });
    expect(ro.code).to.equal(2);
    expect(ro.stderr).to.contain('403 FORBIDDEN');
    const p = await ctl(['pause', '--reason', 'incident 42'], env);
    expect(p.code, p.stderr).to.equal(0);
    const g = await ctl(['guard', '-o', 'json'], env);
    expect((JSON.parse(g.stdout) as { paused: { reason: string; by: string } }).paused).to.deep.include({ reason: 'incident 42', by: 'alice' });

    await produce(brokers, topics.signals, [{ key: 'gpu-node-012', value: xid('gpu-node-012', 79) }]);
    const denied = await waitFor('a denied cordon of gpu-node-012', () => recordsFor('gpu-node-012').find((r) => r.action === 'cordon'), 30_000);
    expect(denied).to.include({ outcome: 'denied', guard: 'paused' });
    const viaCtl = await ctl(['ledger', '--node', 'gpu-node-012', '--outcome', 'denied'], env);
    expect(viaCtl.stdout).to.match(/test-xid-fatal\s+cordon\s+Node\/gpu-node-012\s+denied\s+paused/);

    const r = await ctl(['resume'], env);
    expect(r.code, r.stderr).to.equal(0);
    await produce(brokers, topics.signals, [{ key: 'gpu-node-013', value: xid('gpu-node-013', 79) }]);
    const executed = await waitFor('an executed cordon of gpu-node-013', () => recordsFor('gpu-node-013').find((x) => x.action === 'cordon'), 30_000);
    expect(executed).to.include({ outcome: 'executed', guard: null });
  });

  it('ctl reports a refused connection clearly', async () => {
    const port = await freePort();
    const res = await ctl(['guard', '--server', `http://127.0.0.1:${port}`], env);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal(`nodewarden ctl: cannot connect to http://127.0.0.1:${port}: connection refused (is the engine running? set --server or NODEWARDEN_SERVER)\n`);
  });

  /**
   * Every route of the server's own table (so a new route cannot be left out),
   * against the running engine: no token and an unknown token get 401 with a
   * WWW-Authenticate challenge and say nothing about the route; a read-only
   * token gets 403 on every mutating route and 200 on every reading one; an
   * admin token gets 200 everywhere (with a valid body).
   */
  it('401/403 matrix: every control API route, every kind of caller', async () => {
    const routes = new EngineHttpServer({
      host: '127.0.0.1',
      port: 0,
      registry: createRegistry('engine', { defaultMetrics: false }),
      readiness: () => Promise.resolve({ ready: true, checks: {} }),
      clock: systemClock,
      logger: silentLogger,
    }).routeTable();
    // An admin request that succeeds, per route. A route missing here fails the test: add its example.
    const adminBody: Record<string, unknown> = {
      'POST /api/v1/rules/{id}/disable': { reason: 'auth matrix', ttl: '1s' },
      'POST /api/v1/rules/{id}/enable': { reason: 'auth matrix' },
      'POST /api/v1/pause': { reason: 'auth matrix' },
      'POST /api/v1/resume': {},
    };
    const call = async (r: RouteInfo, token: string | null, body?: unknown): Promise<Response> => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token !== null) headers.authorization = `Bearer ${token}`;
      const path = r.example.replace('{id}', 'test-xid-fatal');
      return await fetch(`${engine!.url}${path}`, { method: r.method, headers, ...(r.method === 'POST' ? { body: JSON.stringify(body ?? { reason: 'auth matrix' }) } : {}) });
    };
    expect(routes.length, 'the route table').to.be.at.least(7);
    const seen: string[] = [];
    for (const r of routes) {
      const name = `${r.method} ${r.example}`;
      expect(r.pattern.test(r.example.replace('{id}', 'x')), `${name}: example matches its pattern`).to.equal(true);
      for (const [who, token] of [['no token', null], ['unknown token', STRANGER], ['malformed header', 'a b']] as const) {
        const res = await call(r, token);
        expect(res.status, `${name} with ${who}`).to.equal(401);
        expect(res.headers.get('www-authenticate'), `${name} with ${who}`).to.match(/^Bearer realm="nodewarden"/);
        const text = await res.text();
        expect(text, `${name} with ${who} reveals nothing`).not.to.match(/rule|guard|ledger|paused/i);
      }
      const ro = await call(r, READER, adminBody[name]);
      expect(ro.status, `${name} with the read-only token`).to.equal(r.mutating ? 403 : 200);
      if (r.mutating) expect(((await ro.json()) as { error: { code: string } }).error.code).to.equal('FORBIDDEN');
      expect(name in adminBody || !r.mutating, `${name}: add an admin request body to this test`).to.equal(true);
      const admin = await call(r, ADMIN, adminBody[name]);
      expect(admin.status, `${name} with the admin token: ${await admin.clone().text()}`).to.equal(200);
      seen.push(name);
    }
    // Paths that match no route are authenticated first too (an anonymous caller learns nothing).
    for (const path of ['/api/v1/secrets', '/api/v2/rules', '/api/']) {
      const res = await fetch(`${engine!.url}${path}`);
      expect(res.status, path).to.equal(401);
    }
    expect(seen).to.include.members(['GET /api/v1/rules', 'POST /api/v1/pause', 'GET /api/v1/ledger']);
    expect((await ctl(['guard', '-o', 'json'], env)).stdout, 'the matrix left the engine resumed').to.match(/"paused":\s*null/);
  });
});
