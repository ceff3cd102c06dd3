/**
 * Kafka SASL/SCRAM-SHA-512 over TLS and Redis ACL user + password over TLS,
 * against REAL servers (test/harness/kafka.ts `saslSsl`, redis.ts `tlsAcl`;
 * a throw-away CA made with openssl): the agent's publisher and a running
 * `nodewarden engine` are configured the way the Helm chart configures them
 * (credentials and CA from files, nothing secret in the config), and an event
 * goes agent publish -> engine consume -> Redis state -> ledger (topic and
 * Redis stream). Plaintext, unauthenticated and wrong-password clients are
 * refused by both servers; the ACL keeps the engine's user inside its prefix.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import { BatchPublisher } from '../../agent/publisher/batch-publisher.js';
import { createKafkaProducer } from '../../agent/publisher/kafka-producer.js';
import { loadConfig } from '../../adapters/config-file.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { UlidFactory } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../agent/metrics.js';
import { redisTransport } from '../../adapters/transport-security.js';
import { startKafka } from '../harness/kafka.js';
import type { KafkaBroker } from '../harness/kafka.js';
import { makeTempDir } from '../harness/proc.js';
import { startRedis } from '../harness/redis.js';
import type { RedisServer } from '../harness/redis.js';
import { registerSecret } from '../harness/secrets.js';
import type { EngineProc } from './engine-support.js';
import { engineLog, startEngine, TopicFollower, uniqueTopics, waitFor } from './engine-support.js';

const { Kafka, logLevel } = kafkajs;

const secret = (label: string): string => registerSecret(label, randomBytes(18).toString('base64url'));

describe('security: Kafka SASL_SSL (SCRAM-SHA-512) and Redis TLS + ACL, end to end', function () {
  this.timeout(180_000);
  const BROKER_PW = secret('kafka broker (inter-broker) SCRAM password');
  const AGENT_PW = secret('kafka agent SCRAM password');
  const ENGINE_PW = secret('kafka engine SCRAM password');
  const REDIS_PW = secret('redis engine ACL password');
  const PREFIX = `nwsec${process.pid}:`;
  const topics = uniqueTopics('sec');
  let kafka: KafkaBroker;
  let redis: RedisServer;
  let engine: EngineProc | undefined;
  let ledger: TopicFollower | undefined;
  let secrets: string;
  /** Writes a secret file the way a mounted Secret looks (0400 in a 0700 dir). */
  const file = (name: string, content: string): string => {
    const p = path.join(secrets, name);
    fs.rmSync(p, { force: true });
    fs.writeFileSync(p, `${content}\n`, { mode: 0o400 });
    return p;
  };

  before(async () => {
    [kafka, redis] = await Promise.all([
      startKafka({
        numPartitions: 2,
        saslSsl: {
          users: [
            { username: 'broker', password: BROKER_PW },
            { username: 'nodewarden-agent', password: AGENT_PW },
            { username: 'nodewarden-engine', password: ENGINE_PW },
          ],
          authorizer: true,
        },
      }),
      startRedis({ tlsAcl: { users: [{ username: 'nodewarden', password: REDIS_PW, rules: `~${PREFIX}* &* +@all -@dangerous +info` }] } }),
    ]);
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 2);
    // Least privilege on the bus (docs/security.md): the agent only writes signals; the engine reads
    // signals in its own consumer groups and writes the dead letters and the ledger.
    const { AclOperationTypes: Op, AclPermissionTypes, AclResourceTypes: Res, ResourcePatternTypes } = kafkajs;
    const allow = (user: string, resourceType: kafkajs.AclResourceTypes, resourceName: string, operation: kafkajs.AclOperationTypes, pattern = ResourcePatternTypes.LITERAL): kafkajs.AclEntry => ({
      principal: `User:${user}`,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
      resourceType,
      resourceName,
      resourcePatternType: pattern,
    });
    const admin = new Kafka({ clientId: 'nw-sec-acl', brokers: kafka.brokers, ...kafka.security!.admin, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createAcls({
        acl: [
          allow('nodewarden-agent', Res.TOPIC, topics.signals, Op.WRITE),
          allow('nodewarden-engine', Res.TOPIC, topics.signals, Op.READ),
          allow('nodewarden-engine', Res.GROUP, 'engine-', Op.READ, ResourcePatternTypes.PREFIXED),
          allow('nodewarden-engine', Res.TOPIC, topics.deadLetter, Op.WRITE),
          allow('nodewarden-engine', Res.TOPIC, topics.ledger, Op.WRITE),
        ],
      });
    } finally {
      await admin.disconnect();
    }
    secrets = makeTempDir('secrets');
    fs.chmodSync(secrets, 0o700);
  });

  after(async () => {
    await engine?.kill('SIGTERM');
    await ledger?.stop();
    await Promise.all([kafka?.stop(), redis?.stop()]);
  });

  const kafkaSettings = (user: string, pw: string): Record<string, unknown> => ({
    ssl: true,
    caFile: kafka.security!.caFile,
    sasl: { mechanism: 'scram-sha-512', usernameFile: file(`kafka-${user}-username`, user), passwordFile: file(`kafka-${user}-password`, pw) },
  });

  it('an event goes agent publish -> engine consume -> Redis state -> ledger, all over SASL_SSL and TLS + ACL', async () => {
    engine = await startEngine({
      brokers: kafka.brokers,
      redisUrl: redis.url,
      keyPrefix: PREFIX,
      groupId: `engine-${topics.signals}`,
      topics,
      kafkaExtra: kafkaSettings('nodewarden-engine', ENGINE_PW),
      redisExtra: { passwordFile: file('redis-password', REDIS_PW), caFile: redis.caFile },
    });
    ledger = await new TopicFollower(kafka.brokers, topics.ledger, kafka.security!.admin).start();

    // The agent's publisher, configured from a config file exactly as the chart renders it.
    const cfgFile = path.join(secrets, 'agent.yaml');
    fs.writeFileSync(cfgFile, JSON.stringify({ kafka: { brokers: kafka.brokers, topics, ...kafkaSettings('nodewarden-agent', AGENT_PW) } }));
    const config = loadConfig({ file: cfgFile, env: {} });
    const publisher = new BatchPublisher({
      producer: createKafkaProducer({ kafka: config.kafka, logger: silentLogger, clientIdSuffix: 'sec' }),
      topic: topics.signals,
      batchSize: 10,
      lingerMs: 10,
      maxEvents: 100,
      registry: createRegistry('agent'),
      logger: silentLogger,
      flushTimeoutMs: 30_000,
      retry: { initialMs: 200, maxMs: 1000 },
    });
    const ev: EventEnvelope = {
      v: 1,
      id: new UlidFactory().next(),
      ts: new Date().toISOString(),
      node: 'gpu-node-020',
      type: 'gpu.xid',
      source: 'kmsg',
      labels: { pool: 'h100-train', zone: 'us-west-2a' },
      data: { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' },
    };
    await publisher.publish([ev]);
    await publisher.flush();
    await publisher.shutdown();

    const cordon = await waitFor('the cordon on the ledger topic', () => ledger!.records.find((r) => r.action === 'cordon' && (r.target as { name?: string }).name === 'gpu-node-020'), 60_000, 100);
    expect(cordon).to.include({ outcome: 'executed', rule: 'test-xid-fatal' });

    // Redis holds the engine's state under its prefix, read back over TLS as the same ACL user.
    const t = redisTransport({ url: redis.url, keyPrefix: PREFIX, passwordFile: file('redis-password-reader', REDIS_PW), caFile: redis.caFile ?? null });
    const r = new Redis(t.url, { ...t.options, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      const keys = await r.keys(`${PREFIX}*`).catch(() => null); // KEYS is @dangerous: denied by the ACL
      expect(keys, 'KEYS is outside the ACL').to.equal(null);
      const stream = await r.xrange(`${PREFIX}ledger`, '-', '+');
      expect(stream.map(([, fields]) => fields.join(' ')).join('\n')).to.contain('gpu-node-020');
      const err = await r.set('other-app:key', 'x').then(() => null, (e: Error) => e.message);
      expect(err, 'a key outside the prefix').to.match(/^NOPERM/);
    } finally {
      r.disconnect();
    }
    const authTrouble = engineLog(engine)
      .split('\n')
      .filter((l) => /"level":"(error|warn)"/.test(l) && /sasl|ssl|tls|certificate|auth|noperm|wrongpass/i.test(l));
    expect(authTrouble, 'authentication, TLS or ACL warnings of the engine').to.deep.equal([]);
  });

  it('an engine with a wrong Kafka or Redis password never gets ready, says why, and logs no password', async () => {
    const WRONG = secret('a wrong password');
    const base = { brokers: kafka.brokers, redisUrl: redis.url, keyPrefix: PREFIX, groupId: `engine-bad-${topics.signals}`, topics, readyTimeoutMs: 8000 };
    const fails = async (kafkaExtra: Record<string, unknown>, redisExtra: Record<string, unknown>): Promise<string> => {
      const e = await startEngine({ ...base, kafkaExtra, redisExtra }).then(
        async (ok) => {
          await ok.kill('SIGKILL');
          return null;
        },
        (err: Error) => err,
      );
      expect(e, 'the engine got ready with a wrong password').to.be.instanceOf(Error);
      return e!.message;
    };
    const goodRedis = { passwordFile: file('redis-password-2', REDIS_PW), caFile: redis.caFile };
    const badKafka = await fails(kafkaSettings('nodewarden-engine', WRONG), goodRedis);
    expect(badKafka).to.match(/SASL SCRAM SHA512 authentication failed/);
    const badRedis = await fails(kafkaSettings('nodewarden-engine', ENGINE_PW), { passwordFile: file('redis-password-wrong', WRONG), caFile: redis.caFile });
    expect(badRedis).to.match(/WRONGPASS/);
    for (const text of [badKafka, badRedis]) for (const pw of [WRONG, ENGINE_PW, REDIS_PW]) expect(text).not.to.contain(pw);
  });

  it('Kafka refuses plaintext, TLS without SASL, and a wrong SCRAM password', async () => {
    const attempt = async (cfg: Partial<kafkajs.KafkaConfig>): Promise<string> => {
      const admin = new Kafka({ clientId: 'nw-sec-probe', brokers: kafka.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 2000, requestTimeout: 3000, retry: { retries: 0 }, ...cfg }).admin();
      try {
        await admin.connect();
        await admin.listTopics();
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    };
    const ca = kafka.security!.admin.ssl;
    expect(await attempt({}), 'plaintext').not.to.equal('accepted');
    expect(await attempt({ ssl: ca }), 'TLS without SASL').not.to.equal('accepted');
    expect(await attempt({ ssl: ca, sasl: { mechanism: 'scram-sha-512', username: 'nodewarden-agent', password: 'wrong-password-123' } }), 'wrong password').to.match(/SASL SCRAM SHA512 authentication failed/i);
    expect(await attempt({ ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'nodewarden-agent', password: AGENT_PW } }), 'an untrusted CA').to.match(/self[- ]signed|unable to verify|certificate/i);
    expect(await attempt({ ssl: ca, sasl: { mechanism: 'scram-sha-512', username: 'nodewarden-agent', password: AGENT_PW } }), 'the agent itself').to.equal('accepted');
  });

  it("the agent's own Kafka client (ADR 0040): a wrong SCRAM password, an untrusted CA, plaintext and a topic outside its ACL are refused with a clear error", async () => {
    const outcome = async (settings: Record<string, unknown>, topic: string): Promise<string> => {
      const cfgFile = path.join(secrets, `agent-probe-${randomBytes(4).toString('hex')}.yaml`);
      fs.writeFileSync(cfgFile, JSON.stringify({ kafka: { brokers: kafka.brokers, topics, ...settings } }));
      const p = createKafkaProducer({ kafka: loadConfig({ file: cfgFile, env: {} }).kafka, logger: silentLogger, clientIdSuffix: 'probe', retries: 0, connectionTimeoutMs: 2000, requestTimeoutMs: 3000 });
      try {
        await p.connect();
        await p.send(topic, [{ key: 'probe-node', value: '{}' }]);
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      } finally {
        await p.disconnect();
      }
    };
    const wrong = await outcome(kafkaSettings('nodewarden-agent', 'wrong-password-123'), topics.signals);
    const good = kafkaSettings('nodewarden-agent', AGENT_PW); // rewrites the password file the line above overwrote
    expect(wrong).to.match(/SASL SCRAM-SHA-512 authentication as nodewarden-agent.*SASL_AUTHENTICATION_FAILED \(58\)/);
    expect(wrong).not.to.contain('wrong-password-123');
    expect(await outcome({ ...good, caFile: null }, topics.signals), 'an untrusted CA').to.match(/self[- ]signed|unable to verify|certificate/i);
    expect(await outcome({ ssl: false, sasl: null }, topics.signals), 'plaintext').not.to.equal('accepted');
    expect(await outcome(good, topics.ledger), 'the ledger topic (no WRITE for the agent)').to.match(/TOPIC_AUTHORIZATION_FAILED \(29\)/);
    expect(await outcome(good, topics.signals), 'the agent itself').to.equal('accepted');
  });

  it('Kafka ACLs: the agent identity can neither forge ledger records nor read the bus', async () => {
    const agent = new Kafka({
      clientId: 'nw-sec-agent-probe',
      brokers: kafka.brokers,
      ssl: kafka.security!.admin.ssl,
      sasl: { mechanism: 'scram-sha-512', username: 'nodewarden-agent', password: AGENT_PW },
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const producer = agent.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      const forged = await producer.send({ topic: topics.ledger, acks: -1, messages: [{ key: 'x', value: '{"outcome":"executed"}' }] }).then(() => 'accepted', (e: Error) => e.message);
      expect(forged, 'write to the ledger topic').to.match(/not authorized/i);
      const ok = await producer.send({ topic: topics.signals, acks: -1, messages: [{ key: 'gpu-node-099', value: '{}' }] }).then(() => 'accepted', (e: Error) => e.message);
      expect(ok, 'write to the signals topic').to.equal('accepted');
    } finally {
      await producer.disconnect();
    }
    // a probe: a refused join must not be retried by kafkajs (its restart timer would outlive the test)
    const consumer = agent.consumer({ groupId: 'engine-agent-probe', retry: { retries: 0, restartOnFailure: () => Promise.resolve(false) } });
    await consumer.connect();
    try {
      const read = await consumer.subscribe({ topic: topics.ledger, fromBeginning: true }).then(() => consumer.run({ eachMessage: () => Promise.resolve() })).then(
        () => 'accepted',
        (e: Error) => e.message,
      );
      expect(read, 'read the ledger topic').to.match(/not authorized/i);
    } finally {
      await consumer.disconnect();
    }
  });

  it('Redis refuses plaintext, no AUTH, and a wrong password', async () => {
    const ca = fs.readFileSync(redis.caFile!);
    const raw = (secure: boolean, send: string): Promise<string> =>
      new Promise((resolve) => {
        const sock = secure ? tls.connect({ host: '127.0.0.1', port: redis.port, ca, servername: 'localhost' }) : net.connect({ host: '127.0.0.1', port: redis.port });
        let buf = '';
        const done = (v: string): void => {
          sock.destroy();
          resolve(v);
        };
        sock.setTimeout(3000, () => done(buf || 'timeout'));
        sock.once('error', (e: Error) => done(buf || `error: ${e.message}`));
        sock.once(secure ? 'secureConnect' : 'connect', () => sock.write(send));
        sock.on('data', (d: Buffer) => {
          buf += d.toString('utf8');
          if (buf.split('\r\n').length > send.split('\r\n').length - 1) done(buf);
        });
        sock.once('close', () => done(buf || 'closed'));
      });
    expect(await raw(false, 'PING\r\n'), 'plaintext').not.to.contain('+PONG');
    expect(await raw(true, 'PING\r\n'), 'TLS, no AUTH').to.match(/^-NOAUTH/);
    expect(await raw(true, 'AUTH nodewarden wrong-password-123\r\n'), 'wrong password').to.match(/^-WRONGPASS/);
    expect(await raw(true, `AUTH default ${REDIS_PW}\r\n`), 'the default user is off').to.match(/^-WRONGPASS/);
  });
});
