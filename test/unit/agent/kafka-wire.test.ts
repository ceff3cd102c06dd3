/**
 * The agent's Kafka client (agent/publisher/kafka-wire, ADR 0040) without a
 * broker: CRC-32C and SCRAM against published vectors, the partitioner and
 * the Produce encoding byte-for-byte against kafkajs (which the engine still
 * uses), decoders against responses captured from the real broker, bounded
 * reads, and the idempotence rules (same sequence on resend, new producer id
 * when the broker lost ours) against a scripted fake broker over TCP.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import { crc32c } from '../../../agent/publisher/kafka-wire/crc32c.js';
import { murmur2, partitionForKey } from '../../../agent/publisher/kafka-wire/murmur2.js';
import { MalformedResponseError, Reader, Writer } from '../../../agent/publisher/kafka-wire/codec.js';
import { API, decodeApiVersions, decodeInitProducerId, decodeMetadata, decodeProduce, encodeProduce, ERR, frame } from '../../../agent/publisher/kafka-wire/protocol.js';
import { ScramClient } from '../../../agent/publisher/kafka-wire/scram.js';
import { BrokerConnection } from '../../../agent/publisher/kafka-wire/connection.js';
import { WireProducer } from '../../../agent/publisher/kafka-wire/idempotent-producer.js';
import { silentLogger } from '../../../core/logger.js';

const require = createRequire(import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const FIX = path.join(REPO_ROOT, 'test', 'fixtures', 'kafka-wire');

interface KafkajsEncoder {
  buffer: Buffer;
  writeVarInt(v: number): KafkajsEncoder;
  writeVarLong(v: unknown): KafkajsEncoder;
}
const KEncoder = require('kafkajs/src/protocol/encoder.js') as new () => KafkajsEncoder;
const KLong = require('kafkajs/src/utils/long.js') as { fromValue(v: number | string): unknown };
const kProduceV7 = require('kafkajs/src/protocol/requests/produce/v7/request.js') as (args: Record<string, unknown>) => { apiKey: number; apiVersion: number; encode(): Promise<KafkajsEncoder> };
const kRequest = require('kafkajs/src/protocol/request.js') as (args: { correlationId: number; clientId: string; request: { apiKey: number; apiVersion: number; encode(): Promise<KafkajsEncoder> } }) => Promise<KafkajsEncoder>;

/** Deterministic pseudo-random keys: node names, unicode, empty, long. */
function keys(): string[] {
  const out = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'gpu-node-0', 'ip-10-0-3-17.ec2.internal', 'ünïcødé-节点-🚀', 'x'.repeat(300)];
  let s = 12345;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 2000; i++) {
    const len = rnd() % 40;
    let k = '';
    for (let j = 0; j < len; j++) k += String.fromCodePoint(rnd() % 3 === 0 ? 0x20 + (rnd() % 0x2000) : 0x61 + (rnd() % 26));
    out.push(i % 3 === 0 ? `node-${rnd() % 100000}` : k);
  }
  return out;
}

describe('agent kafka-wire: CRC-32C', () => {
  it('matches the published check values (RFC 3720 B.4 and "123456789")', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0))).to.equal(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).to.equal(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).to.equal(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).to.equal(0x113fdb5c);
  });
});

describe('agent kafka-wire: partitioner', () => {
  it('puts every key on the same partition as kafkajs DefaultPartitioner, for 1..64 partitions', () => {
    const kafkajsPartition = kafkajs.Partitioners.DefaultPartitioner();
    const all = keys();
    let compared = 0;
    for (const n of [1, 2, 3, 5, 6, 7, 12, 16, 31, 64]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
      for (const key of all) {
        const want = kafkajsPartition({ topic: 't', partitionMetadata, message: { key, value: 'v' } });
        expect(partitionForKey(key, n), `key ${JSON.stringify(key)} over ${n}`).to.equal(want);
        compared++;
      }
    }
    expect(compared).to.be.greaterThan(20_000);
  });

  it('matches kafkajs murmur2 on raw hashes, and a Java-computed value', () => {
    const kMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (k: string) => number;
    for (const key of keys().slice(0, 500)) expect(murmur2(Buffer.from(key, 'utf8'))).to.equal(kMurmur2(key));
    // org.apache.kafka.common.utils.Utils.murmur2("21".getBytes()) == -973932308 (Kafka's UtilsTest)
    expect(murmur2(Buffer.from('21'))).to.equal(-973932308);
  });
});

describe('agent kafka-wire: encoding', () => {
  it('varints and varlongs equal kafkajs Encoder output', () => {
    for (const v of [0, 1, -1, 63, 64, -64, -65, 127, 128, 300, -300, 2 ** 31 - 1, -(2 ** 31), 2 ** 40 + 7, -(2 ** 45), 1_733_220_000_000]) {
      const mine = new Writer(4).varint(v).view();
      const theirs = Math.abs(v) < 2 ** 31 ? new KEncoder().writeVarInt(v).buffer : new KEncoder().writeVarLong(KLong.fromValue(v)).buffer;
      expect(mine.toString('hex'), String(v)).to.equal(theirs.toString('hex'));
      if (Math.abs(v) < 2 ** 31) expect(mine.toString('hex')).to.equal(new KEncoder().writeVarLong(KLong.fromValue(v)).buffer.toString('hex'));
    }
  });

  it('a Produce v7 request (RecordBatch v2, CRC-32C, producer id, epoch, sequence) is byte-identical to kafkajs', async () => {
    const t0 = 1_733_220_000_000;
    const msgs = [
      { key: 'node-a', value: '{"v":1,"type":"gpu.xid"}', timestamp: String(t0 + 5) },
      { key: 'node-a', value: 'ü'.repeat(200), timestamp: String(t0) },
      { key: 'node-a', value: 'x'.repeat(5000), timestamp: String(t0 + 70_000) },
    ];
    const partitions = [
      { partition: 3, baseSequence: 17, messages: msgs },
      { partition: 0, baseSequence: 2 ** 31 - 2, messages: msgs.slice(0, 1) },
    ];
    const body = new Writer(64);
    encodeProduce('nodewarden.signals', 123456789012n, 7, partitions, 10_000)(body);
    const k = kProduceV7({
      acks: -1,
      timeout: 10_000,
      producerId: KLong.fromValue('123456789012'),
      producerEpoch: 7,
      topicData: [{ topic: 'nodewarden.signals', partitions: partitions.map((p) => ({ partition: p.partition, firstSequence: p.baseSequence, messages: p.messages })) }],
    });
    expect(body.view().toString('hex')).to.equal((await k.encode()).buffer.toString('hex'));
    // The request header (v1) and size prefix, too.
    const whole = frame(API.Produce, 99, 'nodewarden-agent-n1', (w) => encodeProduce('nodewarden.signals', 123456789012n, 7, partitions, 10_000)(w));
    expect(whole.toString('hex')).to.equal((await kRequest({ correlationId: 99, clientId: 'nodewarden-agent-n1', request: k })).buffer.toString('hex'));
  });
});

describe('agent kafka-wire: decoders on responses captured from the real broker (Kafka 3.9)', () => {
  const fixture = (name: string): Buffer => Buffer.from(fs.readFileSync(path.join(FIX, `${name}.hex`), 'utf8').trim(), 'hex');

  it('ApiVersions v1', () => {
    const r = decodeApiVersions(new Reader(fixture('api-versions-v1.response')));
    expect(r.errorCode).to.equal(0);
    const produce = r.apis.find((a) => a.key === 0);
    expect(produce?.min).to.be.at.most(7);
    expect(produce?.max).to.be.at.least(7);
    expect(r.apis.find((a) => a.key === 3)?.max).to.be.at.least(5);
  });

  it('Metadata v5', () => {
    const m = decodeMetadata(new Reader(fixture('metadata-v5.response')));
    expect(m.brokers).to.have.length(1);
    expect(m.brokers[0]?.host).to.equal('127.0.0.1');
    const t = m.topics.find((x) => x.name === 'fixture-topic');
    expect(t?.errorCode).to.equal(0);
    expect(t?.partitions.map((p) => p.partition).sort()).to.deep.equal([0, 1, 2]);
    expect(t?.partitions.every((p) => p.leader === m.brokers[0]?.nodeId)).to.equal(true);
    const missing = m.topics.find((x) => x.name === 'fixture-missing');
    expect(missing?.errorCode).to.equal(ERR.UNKNOWN_TOPIC_OR_PARTITION);
  });

  it('InitProducerId v1 and Produce v7', () => {
    const i = decodeInitProducerId(new Reader(fixture('init-producer-id-v1.response')));
    expect(i.errorCode).to.equal(0);
    expect(i.producerId >= 0n).to.equal(true);
    const p = decodeProduce(new Reader(fixture('produce-v7.response')), 'fixture-topic');
    expect(p).to.have.length(1);
    expect(p[0]?.errorCode).to.equal(0);
    expect(p[0]?.baseOffset).to.equal(0n);
    const dup = decodeProduce(new Reader(fixture('produce-v7-resend.response')), 'fixture-topic');
    expect(dup[0]?.errorCode, 'a resend with the same sequence is acknowledged, not written again').to.equal(0);
    expect(dup[0]?.baseOffset).to.equal(0n);
  });

  it('truncated or inflated responses are MalformedResponseError, never a huge allocation', () => {
    const full = fixture('metadata-v5.response');
    for (const cut of [0, 3, 10, full.length - 1]) expect(() => decodeMetadata(new Reader(full.subarray(0, cut)))).to.throw(MalformedResponseError);
    const inflated = Buffer.from(full);
    inflated.writeInt32BE(0x7fffffff, 4); // broker count
    expect(() => decodeMetadata(new Reader(inflated))).to.throw(MalformedResponseError, /array of 2147483647 items/);
    expect(() => decodeProduce(new Reader(fixture('produce-v7.response')), 'other-topic')).to.throw(MalformedResponseError);
  });
});

describe('agent kafka-wire: SCRAM', () => {
  it('SCRAM-SHA-256 reproduces RFC 7677 section 3', async () => {
    const c = new ScramClient('scram-sha-256', 'user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    expect(c.firstMessage()).to.equal('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = await c.finalMessage('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    expect(final).to.equal('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    c.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    expect(() => c.verifyServerFinal('v=AAAArriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).to.throw(/signature mismatch/);
    expect(() => c.verifyServerFinal('e=invalid-proof')).to.throw(/invalid-proof/);
  });

  it('escapes the user name and refuses a nonce it did not start, an absurd iteration count, or a missing salt', async () => {
    expect(new ScramClient('scram-sha-512', 'a=b,c', 'p', 'N').firstMessage()).to.equal('n,,n=a=3Db=2Cc,r=N');
    const c = (): ScramClient => new ScramClient('scram-sha-512', 'u', 'p', 'abc');
    const fails = async (serverFirst: string, re: RegExp): Promise<void> => {
      const err = await c().finalMessage(serverFirst).then(() => null, (e: unknown) => e);
      expect(String(err)).to.match(re);
    };
    await fails('r=zzz123,s=c2FsdA==,i=4096', /nonce/);
    await fails('r=abc,s=c2FsdA==,i=4096', /nonce/);
    await fails('r=abcdef,s=c2FsdA==,i=100000000', /iteration/);
    await fails('r=abcdef,i=4096', /salt/);
  });

  it('SCRAM-SHA-512 proves and checks the password the way a server computes it (RFC 5802 section 3)', async () => {
    const { createHash, createHmac, pbkdf2Sync } = await import('node:crypto');
    const c = new ScramClient('scram-sha-512', 'agent', 'pässword', 'cn0nce');
    const serverFirst = 'r=cn0nceSERVER,s=' + Buffer.from('saltsalt').toString('base64') + ',i=4096';
    const final = await c.finalMessage(serverFirst);
    const salted = pbkdf2Sync('pässword'.normalize('NFKC'), 'saltsalt', 4096, 64, 'sha512');
    const clientKey = createHmac('sha512', salted).update('Client Key').digest();
    const stored = createHash('sha512').update(clientKey).digest();
    const authMessage = `n=agent,r=cn0nce,${serverFirst},c=biws,r=cn0nceSERVER`;
    const sig = createHmac('sha512', stored).update(authMessage).digest();
    const proof = Buffer.from(final.split(',p=')[1] ?? '', 'base64');
    const recovered = Buffer.from(proof.map((b, i) => b ^ (sig[i] as number)));
    expect(createHash('sha512').update(recovered).digest().equals(stored)).to.equal(true);
    const serverSig = createHmac('sha512', createHmac('sha512', salted).update('Server Key').digest()).update(authMessage).digest();
    c.verifyServerFinal(`v=${serverSig.toString('base64')}`);
  });
});

// ---- a scripted fake broker over TCP

interface FakeRequest {
  api: number;
  correlationId: number;
  body: Reader;
}
type Answer = Buffer | 'drop' | 'silent' | { raw: Buffer };
interface SeenProduce {
  pid: bigint;
  epoch: number;
  batches: Array<{ partition: number; baseSequence: number; count: number }>;
}

/** Speaks just enough Kafka (one broker, node 0, topic `t` with 2 partitions); Produce answers follow `produceScript`. */
class FakeBroker {
  private server = net.createServer((s) => this.onSocket(s));
  private sockets = new Set<net.Socket>();
  port = 0;
  produced: SeenProduce[] = [];
  /** Per Produce request, in order: 'ok', 'drop' (close without answering), or an error code for every partition. Then 'ok'. */
  produceScript: Array<'ok' | 'drop' | number> = [];
  initPids: bigint[] = [42n, 43n, 44n];
  apiVersionsAnswer: Answer | null = null;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onSocket(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        const f = Buffer.from(buf.subarray(4, 4 + buf.readInt32BE(0)));
        buf = buf.subarray(4 + f.length);
        const r = new Reader(f);
        r.int16();
        const api = f.readInt16BE(0);
        r.int16();
        const req: FakeRequest = { api, correlationId: r.int32(), body: r };
        r.nullableString();
        const a = this.answer(req);
        if (a === 'drop') {
          s.destroy();
          return;
        }
        if (a === 'silent') continue;
        if (Buffer.isBuffer(a)) s.write(new Writer().int32(4 + a.length).int32(req.correlationId).raw(a).view());
        else s.write(a.raw);
      }
    });
  }

  private answer(req: FakeRequest): Answer {
    const w = new Writer();
    if (req.api === API.ApiVersions) {
      if (this.apiVersionsAnswer) return this.apiVersionsAnswer;
      const apis: Array<[number, number, number]> = [[0, 3, 9], [3, 0, 12], [18, 0, 3], [22, 0, 4]];
      return Buffer.from(w.int16(0).array(apis, (x, [k, lo, hi]) => x.int16(k).int16(lo).int16(hi)).int32(0).view());
    }
    if (req.api === API.Metadata) {
      w.int32(0).int32(1).int32(0).string('127.0.0.1').int32(this.port).string(null).string('c').int32(0);
      w.int32(1).int16(0).string('t').bool(false).array([0, 1], (x, p) => x.int16(0).int32(p).int32(0).array([0], (y, n) => y.int32(n)).array([0], (y, n) => y.int32(n)).int32(0));
      return Buffer.from(w.view());
    }
    if (req.api === API.InitProducerId) return Buffer.from(w.int32(0).int16(0).int64(this.initPids.shift() ?? 99n).int16(0).view());
    if (req.api !== API.Produce) return 'drop';
    const r = req.body;
    r.nullableString();
    r.int16();
    r.int32();
    r.int32();
    const topic = r.string();
    const seen: SeenProduce = { pid: -1n, epoch: -1, batches: [] };
    r.array(8, (x) => {
      const partition = x.int32();
      const b = new Reader(x.nullableBytes() ?? Buffer.alloc(0));
      b.int64();
      b.int32();
      b.int32();
      b.int8();
      b.int32();
      b.int16();
      b.int32();
      b.int64();
      b.int64();
      seen.pid = b.int64();
      seen.epoch = b.int16();
      seen.batches.push({ partition, baseSequence: b.int32(), count: b.int32() });
    });
    this.produced.push(seen);
    const step = this.produceScript.shift() ?? 'ok';
    if (step === 'drop') return 'drop';
    const code = step === 'ok' ? 0 : step;
    w.int32(1).string(topic).array(seen.batches, (x, b) => x.int32(b.partition).int16(code).int64(code ? -1 : 0).int64(-1).int64(0)).int32(0);
    return Buffer.from(w.view());
  }
}

describe('agent kafka-wire: producer against a scripted fake broker', () => {
  let broker: FakeBroker;
  beforeEach(async () => {
    broker = new FakeBroker();
    await broker.start();
  });
  afterEach(async () => broker.stop());

  const producer = (over: Partial<ConstructorParameters<typeof WireProducer>[0]> = {}): WireProducer =>
    new WireProducer({
      brokers: [`127.0.0.1:${broker.port}`],
      clientId: 'unit',
      ssl: false,
      logger: silentLogger,
      connectTimeoutMs: 2000,
      requestTimeoutMs: 2000,
      retries: 3,
      initialRetryMs: 5,
      maxRetryMs: 20,
      ...over,
    });
  /** Two keys that land on partitions 0 and 1 of 2. */
  const k0 = keys().find((k) => partitionForKey(k, 2) === 0) ?? '';
  const k1 = keys().find((k) => partitionForKey(k, 2) === 1) ?? '';

  it('advances each partition\'s sequence by the records acknowledged, and routes by key', async () => {
    const p = producer();
    await p.connect();
    await p.send('t', [{ key: k0, value: 'a' }, { key: k1, value: 'b' }, { key: k0, value: 'c' }]);
    await p.send('t', [{ key: k0, value: 'd' }]);
    await p.disconnect();
    expect(broker.produced.map((x) => x.batches)).to.deep.equal([
      [{ partition: 0, baseSequence: 0, count: 2 }, { partition: 1, baseSequence: 0, count: 1 }],
      [{ partition: 0, baseSequence: 2, count: 1 }],
    ]);
    expect(broker.produced.every((x) => x.pid === 42n && x.epoch === 0)).to.equal(true);
  });

  it('a batch whose connection dropped before the answer is resent with the same producer id and sequence', async () => {
    broker.produceScript = ['drop', 'drop'];
    const p = producer();
    await p.connect();
    await p.send('t', [{ key: k0, value: 'a' }, { key: k0, value: 'b' }]);
    await p.send('t', [{ key: k0, value: 'c' }]);
    await p.disconnect();
    expect(broker.produced.map((x) => [x.pid, x.batches[0]?.baseSequence])).to.deep.equal([[42n, 0], [42n, 0], [42n, 0], [42n, 2]]);
  });

  it('retriable partition errors (not leader) resend the same sequence; DUPLICATE_SEQUENCE_NUMBER counts as written', async () => {
    broker.produceScript = [ERR.NOT_LEADER_OR_FOLLOWER, ERR.DUPLICATE_SEQUENCE_NUMBER];
    const p = producer();
    await p.connect();
    await p.send('t', [{ key: k1, value: 'a' }]);
    await p.send('t', [{ key: k1, value: 'b' }]);
    await p.disconnect();
    expect(broker.produced.map((x) => x.batches[0]?.baseSequence)).to.deep.equal([0, 0, 1]);
  });

  it('OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID: a new producer id, sequences from 0', async () => {
    broker.produceScript = ['ok', ERR.OUT_OF_ORDER_SEQUENCE_NUMBER, 'ok', ERR.UNKNOWN_PRODUCER_ID];
    const p = producer();
    await p.connect();
    await p.send('t', [{ key: k0, value: 'a' }]);
    await p.send('t', [{ key: k0, value: 'b' }]);
    await p.send('t', [{ key: k0, value: 'c' }]);
    await p.disconnect();
    expect(broker.produced.map((x) => [x.pid, x.batches[0]?.baseSequence])).to.deep.equal([[42n, 0], [42n, 1], [43n, 0], [43n, 1], [44n, 0]]);
  });

  it('gives up after its retries with the broker\'s error, and a non-retriable error at once', async () => {
    broker.produceScript = [ERR.NOT_ENOUGH_REPLICAS, ERR.NOT_ENOUGH_REPLICAS, ERR.NOT_ENOUGH_REPLICAS, ERR.NOT_ENOUGH_REPLICAS, ERR.TOPIC_AUTHORIZATION_FAILED];
    const p = producer();
    await p.connect();
    const err = await p.send('t', [{ key: k0, value: 'a' }]).then(() => null, (e: unknown) => e);
    expect(String(err)).to.match(/NOT_ENOUGH_REPLICAS \(19\)/);
    expect(broker.produced).to.have.length(4);
    const err2 = await p.send('t', [{ key: k0, value: 'a' }]).then(() => null, (e: unknown) => e);
    expect(String(err2)).to.match(/TOPIC_AUTHORIZATION_FAILED/);
    expect(broker.produced).to.have.length(5);
    await p.disconnect();
  });

  it('leaves no timer behind while idle', async () => {
    const p = producer();
    await p.connect();
    await p.send('t', [{ key: k0, value: 'a' }]);
    const timers = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    await new Promise((r) => setImmediate(r));
    expect(process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length).to.be.at.most(timers);
    const before = broker.produced.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(broker.produced.length).to.equal(before);
    await p.disconnect();
  });

  it('a frame over the size cap, or with the wrong correlation id, closes the connection with a clear error', async () => {
    broker.apiVersionsAnswer = { raw: new Writer().int32(0x7fffffff).int32(1).view() };
    const c = new BrokerConnection({ host: '127.0.0.1', port: broker.port, clientId: 'u', ssl: false, connectTimeoutMs: 2000, requestTimeoutMs: 2000 });
    expect(String(await c.connect().then(() => null, (e: unknown) => e))).to.match(/frame of 2147483647 bytes .* \(limit 16777216\)/);
    expect(c.isOpen).to.equal(false);
    broker.apiVersionsAnswer = { raw: new Writer().int32(8).int32(12345).int32(0).view() };
    const c2 = new BrokerConnection({ host: '127.0.0.1', port: broker.port, clientId: 'u', ssl: false, connectTimeoutMs: 2000, requestTimeoutMs: 2000 });
    expect(String(await c2.connect().then(() => null, (e: unknown) => e))).to.match(/correlation id 12345/);
    broker.apiVersionsAnswer = Buffer.from(new Writer().int16(0).int32(1000).view());
    const c3 = new BrokerConnection({ host: '127.0.0.1', port: broker.port, clientId: 'u', ssl: false, connectTimeoutMs: 2000, requestTimeoutMs: 2000, maxFrameBytes: 64 });
    expect(String(await c3.connect().then(() => null, (e: unknown) => e))).to.match(/array of 1000 items/);
  });

  it('a broker without the API versions it needs is refused by name; a silent broker times the request out', async () => {
    broker.apiVersionsAnswer = Buffer.from(new Writer().int16(0).array([[0, 9, 11]], (x, [k, lo, hi]) => x.int16(k ?? 0).int16(lo ?? 0).int16(hi ?? 0)).int32(0).view());
    const c = new BrokerConnection({ host: '127.0.0.1', port: broker.port, clientId: 'u', ssl: false, connectTimeoutMs: 2000, requestTimeoutMs: 2000 });
    expect(String(await c.connect().then(() => null, (e: unknown) => e))).to.match(/does not support api 3 v5 \(broker: absent\)|does not support api 0 v7 \(broker: v9-v11\)/);
    broker.apiVersionsAnswer = 'silent';
    const c2 = new BrokerConnection({ host: '127.0.0.1', port: broker.port, clientId: 'u', ssl: false, connectTimeoutMs: 2000, requestTimeoutMs: 150 });
    expect(String(await c2.connect().then(() => null, (e: unknown) => e))).to.match(/timed out after 150 ms/);
  });
});
