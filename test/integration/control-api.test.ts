/**
 * The control API of a running engine (REAL broker + Redis), driven through
 * `nodewarden ctl`: a rule disabled with a TTL stops deciding at once and
 * comes back by itself; `ctl pause` turns every action into a denied ledger
 * record (guard `paused`) until `ctl resume`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { freePort } from '../harness/ports.js';
import { sharedKafka, sharedRedis } from './servers.js';
import type { EngineProc } from './engine-support.js';
import { ctl, produce, sleep, startEngine, TopicFollower, uniqueTopics, waitFor, xid } from './engine-support.js';

const ADMIN = 'itest-admin-token-0123456789abcdef';
const READER = 'itest-reader-token-0123456789abcdef';

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
    const d = await ctl(['rules', 'disable', 'test-xid-fatal', '--reason', 'firmware rollout', '--ttl', '3s'], env);
    expect(d.stderr).to.equal('');
    expect(d.code).to.equal(0);
    expect(d.stdout).to.match(/^rule test-xid-fatal disabled until .* \(by alice: firmware rollout\)\n$/);
    const list = await ctl(['rules', 'list'], { ...env, NODEWARDEN_TOKEN: READER });
    expect(list.stdout.split('\n').find((l) => l.startsWith('test-xid-fatal '))).to.match(/enabled\s+disabled\s+disabled\s+\ds\s+alice\s+firmware rollout/);

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
    }, 10_000, 200);
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
});
