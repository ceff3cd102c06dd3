/**
 * A real single-node Apache Kafka (KRaft, combined broker+controller) for
 * integration tests. Jars come from scripts/provision/kafka.sh (Maven Central)
 * or from NODEWARDEN_KAFKA_LIBS.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import kafkajs from 'kafkajs';
import { freePort } from './ports.js';
import { makeTestPki } from './tls.js';
import { makeTempDir, spawnLogged, waitUntil, type ManagedProcess } from './proc.js';

const { Kafka, logLevel } = kafkajs;
const execFileP = promisify(execFile);

export interface KafkaOptions {
  /** num.partitions for topics created without an explicit count (default 6). */
  numPartitions?: number;
  /** Directory with the Kafka jars (default: $NODEWARDEN_KAFKA_LIBS or the provision script). */
  libsDir?: string;
  /** How long to wait for the broker to answer describeCluster (default 60 s). */
  startTimeoutMs?: number;
  /** Extra/overriding server.properties entries. */
  properties?: Record<string, string | number | boolean>;
  /** JVM options (default: -Xms256m -Xmx512m plus fast-startup flags, or $NODEWARDEN_KAFKA_JVM_OPTS). */
  jvmOpts?: string[];
  /**
   * Address the client listener binds to and advertises (default 127.0.0.1;
   * PLAINTEXT only). The node harness passes its bridge address so pods reach it.
   */
  host?: string;
  /**
   * SASL_SSL instead of PLAINTEXT on the client listener: TLS with a throw-away
   * CA (test/harness/tls.ts) and SCRAM-SHA-512 users created at storage format
   * time (`--add-scram`). The first user is the broker's own (inter-broker) and
   * the harness's admin identity. The KRaft controller listener stays plaintext
   * on loopback (no client can produce or fetch there).
   */
  saslSsl?: {
    users: Array<{ username: string; password: string }>;
    /**
     * Turn on the KRaft StandardAuthorizer: nothing is allowed without an ACL
     * (`allow.everyone.if.no.acl.found=false`) except to the first user, a super
     * user. ANONYMOUS is a super user too: it is the principal of the plaintext
     * controller listener (the broker's own registration), which no client uses.
     */
    authorizer?: boolean;
  };
}

/** How a client reaches a SASL_SSL broker: kafkajs `ssl` and `sasl` options. */
export interface KafkaClientSecurity {
  ssl: { ca: string[]; rejectUnauthorized: true };
  sasl: { mechanism: 'scram-sha-512'; username: string; password: string };
}

export interface KafkaBroker {
  /** Bootstrap servers, e.g. ['127.0.0.1:40123']. */
  readonly brokers: string[];
  /** Temp dir holding server.properties, logs and data. */
  readonly dir: string;
  /** Broker log (log4j) file. */
  readonly logFile: string;
  /** With saslSsl: the CA file clients must trust, and the admin client's options. */
  readonly security?: { caFile: string; admin: KafkaClientSecurity };
  /** Create topics (waits for leaders). Existing topics are left alone. */
  createTopics(names: string[], partitions?: number): Promise<void>;
  /** SIGTERM, wait, SIGKILL fallback. Data is kept, so restart() works afterwards. */
  stop(): Promise<void>;
  /** Stop (if running) and start again on the same ports and the same log dir. */
  restart(): Promise<void>;
  /** SIGKILL, no clean shutdown; restart() brings the broker back. */
  kill(): Promise<void>;
}

const DEFAULT_JVM_OPTS = [
  '-Xms256m',
  '-Xmx512m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-XX:-UsePerfData',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
];

// ------------------------------------------------------------- provisioning

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'scripts', 'provision', 'kafka.sh'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('kafka harness: cannot find scripts/provision/kafka.sh above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

let libsPromise: Promise<string> | undefined;

/** The Kafka libs dir: $NODEWARDEN_KAFKA_LIBS, else whatever scripts/provision/kafka.sh prints (cached per process). */
export function kafkaLibsDir(): Promise<string> {
  libsPromise ??= (async () => {
    const fromEnv = process.env['NODEWARDEN_KAFKA_LIBS'];
    const dir = fromEnv ?? (await runProvisionScript());
    if (!fs.existsSync(dir) || !fs.readdirSync(dir).some((f) => /^kafka_2\.\d+-.*\.jar$/.test(f))) {
      throw new Error(`kafka harness: no kafka_2.x jar in ${dir}${fromEnv ? ' (from NODEWARDEN_KAFKA_LIBS)' : ''}`);
    }
    return dir;
  })();
  libsPromise.catch(() => {
    libsPromise = undefined;
  });
  return libsPromise;
}

async function runProvisionScript(): Promise<string> {
  const script = path.join(repoRoot(), 'scripts', 'provision', 'kafka.sh');
  try {
    const { stdout } = await execFileP('bash', [script], { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 });
    const last = stdout.trim().split('\n').pop()?.trim();
    if (!last) throw new Error('provision script printed nothing');
    return last;
  } catch (err) {
    const e = err as { message?: string; stderr?: string };
    throw new Error(`kafka harness: ${script} failed: ${e.message ?? String(err)}\n${(e.stderr ?? '').slice(-4000)}`, { cause: err });
  }
}

function javaBin(): string {
  const home = process.env['JAVA_HOME'];
  return home ? path.join(home, 'bin', 'java') : 'java';
}

/** A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'. */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

// ------------------------------------------------------------- broker

function serverProperties(
  dir: string,
  host: string,
  port: number,
  controllerPort: number,
  numPartitions: number,
  extra: Record<string, string | number | boolean>,
): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://${host}:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${host}:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': path.join(dir, 'data'),
    'num.partitions': numPartitions,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 5,
    'group.initial.rebalance.delay.ms': 0,
    // After kill(), the controller refuses the new broker incarnation until the
    // old one's session expires (default 9 s); keep that short for tests.
    'broker.session.timeout.ms': 4000,
    'broker.heartbeat.interval.ms': 500,
    'auto.create.topics.enable': false,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    'log.retention.hours': 24,
    ...extra,
  };
  return Object.entries(props)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('\n')
    .concat('\n');
}

function log4jProperties(logFile: string): string {
  return [
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile}`,
    'log4j.appender.file.Append=true',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.kafka.controller=INFO',
    'log4j.logger.org.apache.kafka.controller=INFO',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n');
}

/**
 * Make the broker create __consumer_offsets now (FindCoordinator triggers it),
 * so the first consumer group in a test does not log "group coordinator is not
 * available" while it waits.
 */
async function warmUpGroupCoordinator(brokers: string[], security: KafkaClientSecurity | undefined): Promise<void> {
  const admin = new Kafka({ clientId: 'nodewarden-harness-warmup', brokers, ...security, logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    await admin.describeGroups(['nodewarden-harness-warmup']);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Ready = describeCluster answers, every partition of every topic has a leader,
 * and the leader serves ListOffsets for it. The last part matters after
 * restart(): the broker answers metadata requests a moment before it has taken
 * leadership of its partitions, and a produce in that window fails with
 * NOT_LEADER (which kafkajs retries by resending the whole batch: duplicates).
 */
async function isReady(brokers: string[], security: KafkaClientSecurity | undefined): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'nodewarden-harness-probe',
    brokers,
    ...security,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0 || cluster.controller === null) return false;
    const topics = await admin.listTopics();
    if (topics.length === 0) return true;
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
    for (const t of metadata) {
      for (const p of t.partitions) {
        if (p.leader < 0 || p.partitionErrorCode !== 0) return false;
      }
    }
    for (const topic of topics) await admin.fetchTopicOffsets(topic);
    return true;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Start a fresh single-node KRaft broker on free loopback ports. */
export async function startKafka(opts: KafkaOptions = {}): Promise<KafkaBroker> {
  const libs = opts.libsDir ?? (await kafkaLibsDir());
  const classpath = `${libs}${path.sep}*`;
  const numPartitions = opts.numPartitions ?? 6;
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const envJvm = process.env['NODEWARDEN_KAFKA_JVM_OPTS']?.split(/\s+/).filter(Boolean);
  const jvmOpts = opts.jvmOpts ?? (envJvm && envJvm.length > 0 ? envJvm : DEFAULT_JVM_OPTS);

  const dir = makeTempDir('kafka');
  const port = await freePort();
  const controllerPort = await freePort();
  const host = opts.host ?? '127.0.0.1';
  const brokers = [`${host}:${port}`];
  const propsFile = path.join(dir, 'server.properties');
  const log4jFile = path.join(dir, 'log4j.properties');
  const logFile = path.join(dir, 'broker.log');
  const stdoutFile = path.join(dir, 'stdout.log');
  let security: { caFile: string; admin: KafkaClientSecurity } | undefined;
  let extra: Record<string, string | number | boolean> = {};
  const scramArgs: string[] = [];
  if (opts.saslSsl) {
    const [first] = opts.saslSsl.users;
    if (!first) throw new Error('kafka harness: saslSsl needs at least one user');
    const pki = await makeTestPki(path.join(dir, 'pki'));
    const jaas = `org.apache.kafka.common.security.scram.ScramLoginModule required username="${first.username}" password="${first.password}";`;
    extra = {
      listeners: `SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      'advertised.listeners': `SASL_SSL://127.0.0.1:${port}`,
      'inter.broker.listener.name': 'SASL_SSL',
      'listener.security.protocol.map': 'SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT',
      'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
      'sasl.mechanism.inter.broker.protocol': 'SCRAM-SHA-512',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': jaas,
      'ssl.keystore.type': 'PEM',
      'ssl.keystore.location': pki.keystoreFile,
      'ssl.truststore.type': 'PEM',
      'ssl.truststore.location': pki.caFile,
      ...(opts.saslSsl.authorizer
        ? { 'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer', 'super.users': `User:${first.username};User:ANONYMOUS`, 'allow.everyone.if.no.acl.found': false }
        : {}),
    };
    for (const u of opts.saslSsl.users) scramArgs.push('--add-scram', `SCRAM-SHA-512=[name=${u.username},password=${u.password}]`);
    security = {
      caFile: pki.caFile,
      admin: { ssl: { ca: [fs.readFileSync(pki.caFile, 'utf8')], rejectUnauthorized: true }, sasl: { mechanism: 'scram-sha-512', username: first.username, password: first.password } },
    };
  }
  fs.writeFileSync(propsFile, serverProperties(dir, host, port, controllerPort, numPartitions, { ...extra, ...opts.properties }));
  fs.writeFileSync(log4jFile, log4jProperties(logFile));
  const log4jOpt = `-Dlog4j.configuration=file:${log4jFile}`;
  const toolsLog4jFile = path.join(dir, 'tools-log4j.properties');
  fs.writeFileSync(
    toolsLog4jFile,
    [
      'log4j.rootLogger=WARN, stderr',
      'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stderr.Target=System.err',
      'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );

  // Format the KRaft storage once; restarts reuse it.
  const clusterId = randomClusterId();
  try {
    await execFileP(
      javaBin(),
      ['-Xmx256m', '-XX:TieredStopAtLevel=1', `-Dlog4j.configuration=file:${toolsLog4jFile}`, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile, ...scramArgs],
      { timeout: 60_000 },
    );
  } catch (err) {
    const e = err as { message?: string; stdout?: string; stderr?: string };
    // e.message already includes the command's stderr.
    throw new Error(`kafka harness: StorageTool format failed: ${e.message ?? String(err)}\n${e.stdout ?? ''}`, { cause: err });
  }

  let proc: ManagedProcess | undefined;

  async function launch(): Promise<void> {
    const started = Date.now();
    const p = spawnLogged(javaBin(), [...jvmOpts, log4jOpt, '-cp', classpath, 'kafka.Kafka', propsFile], {
      name: 'kafka',
      logFile: stdoutFile,
      cwd: dir,
    });
    proc = p;
    try {
      await waitUntil(() => isReady(brokers, security?.admin), {
        what: `kafka broker ${brokers[0] ?? ''} (describeCluster + partition leaders)`,
        timeoutMs: startTimeoutMs,
        intervalMs: 200,
        proc: p,
        logFiles: [logFile],
      });
    } catch (err) {
      await p.kill();
      throw err;
    }
    if (process.env['NODEWARDEN_HARNESS_DEBUG']) {
      process.stderr.write(`[harness] kafka ${brokers[0] ?? ''} ready in ${Date.now() - started} ms (${dir})\n`);
    }
  }

  async function stop(): Promise<void> {
    await proc?.stop(20_000);
  }

  await launch();
  await warmUpGroupCoordinator(brokers, security?.admin).catch(() => undefined);

  return {
    brokers,
    dir,
    logFile,
    ...(security ? { security } : {}),
    async createTopics(names: string[], partitions = numPartitions): Promise<void> {
      const admin = new Kafka({ clientId: 'nodewarden-harness-admin', brokers, ...security?.admin, logLevel: logLevel.ERROR }).admin();
      await admin.connect();
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
        });
      } finally {
        await admin.disconnect();
      }
    },
    stop,
    async restart(): Promise<void> {
      await stop();
      await launch();
    },
    async kill(): Promise<void> {
      await proc?.kill();
    },
  };
}
