/**
 * A minimal idempotent Kafka producer (ADR 0040): acks = -1, one request in
 * flight per broker, producer id + epoch from InitProducerId, one sequence per
 * partition advanced only when the broker acknowledged the batch. A batch
 * whose outcome is unknown (connection lost, request timed out, leader moved)
 * is resent inside the same send() with the same producer id, epoch and base
 * sequence after a metadata refresh, so the broker drops it if it had already
 * written it (no duplicate) and nothing behind it can overtake it (no
 * reordering). OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID and
 * INVALID_PRODUCER_EPOCH mean the broker no longer knows our sequence: a new
 * producer id is taken (sequences restart at 0) and the batch resent — a batch
 * the broker had written under the old id before such an error would then be
 * written twice (at-least-once, as with kafkajs).
 *
 * Partitions come from murmur2 of the key (kafkajs's DefaultPartitioner). No
 * timer runs while idle; retries use back-off timers only inside a send().
 */
import type { SaslOptions, TlsClientOptions } from '../../../adapters/transport-security.js';
import type { Logger } from '../../../core/logger.js';
import { BrokerConnection, KafkaConnectionError } from './connection.js';
import { partitionForKey } from './murmur2.js';
import {
  API,
  decodeInitProducerId,
  decodeMetadata,
  decodeProduce,
  encodeInitProducerId,
  encodeMetadata,
  encodeProduce,
  ERR,
  errorName,
  KafkaProtocolError,
  needsNewProducerId,
} from './protocol.js';
import type { BrokerAddress, Message, PartitionBatch } from './protocol.js';

export interface WireProducerOptions {
  brokers: readonly string[];
  clientId: string;
  ssl: boolean | TlsClientOptions;
  sasl?: SaslOptions | undefined;
  logger: Logger;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Retries inside one send() after the first attempt. */
  retries: number;
  initialRetryMs: number;
  maxRetryMs: number;
  maxFrameBytes?: number;
}

interface TopicState {
  errorCode: number;
  /** Leader node id per partition index (-1: none); length = partition count. */
  leaders: number[];
}

const SEQ_MOD = 2 ** 31;

function parseBroker(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const host = (i > 0 ? s.slice(0, i) : s).replace(/^\[(.*)\]$/, '$1');
  const port = i > 0 ? Number(s.slice(i + 1)) : 9092;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid kafka broker address ${s}`);
  return { host, port };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class WireProducer {
  private readonly conns = new Map<string, Promise<BrokerConnection>>();
  private readonly nodes = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, TopicState>();
  private readonly sequences = new Map<string, number>();
  private producerId: bigint | null = null;
  private epoch = 0;
  private sending: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: WireProducerOptions) {
    if (opts.brokers.length === 0) throw new Error('no kafka brokers configured');
    for (const b of opts.brokers) parseBroker(b);
  }

  /** Reaches a broker and takes a producer id (once; kept across reconnects so resends stay deduplicated). */
  async connect(): Promise<void> {
    this.closed = false;
    await this.anyConnection();
    if (this.producerId === null) await this.withRetries('InitProducerId', () => this.initProducerId());
  }

  /** Sends the messages (in order per partition), resolved once every partition's batch is acknowledged by all in-sync replicas. */
  send(topic: string, messages: readonly Message[]): Promise<void> {
    const run = (): Promise<void> => this.sendNow(topic, messages);
    const p = this.sending.then(run, run);
    this.sending = p.catch(() => undefined);
    return p;
  }

  async disconnect(): Promise<void> {
    this.closed = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    for (const c of all) (await c.catch(() => null))?.close();
  }

  // ---- connections

  private connection(host: string, port: number): Promise<BrokerConnection> {
    const key = `${host}:${port}`;
    const existing = this.conns.get(key);
    if (!existing) return this.open(key, host, port);
    return existing.then(
      (c) => (c.isOpen ? c : this.reopen(key, existing, host, port)),
      () => this.reopen(key, existing, host, port),
    );
  }

  /** A new connection unless another caller already replaced the dead one (never two sockets per broker). */
  private reopen(key: string, dead: Promise<BrokerConnection>, host: string, port: number): Promise<BrokerConnection> {
    const current = this.conns.get(key);
    return current && current !== dead ? this.connection(host, port) : this.open(key, host, port);
  }

  private open(key: string, host: string, port: number): Promise<BrokerConnection> {
    if (this.closed) return Promise.reject(new KafkaConnectionError('kafka producer disconnected'));
    const c = new BrokerConnection({
      host,
      port,
      clientId: this.opts.clientId,
      ssl: this.opts.ssl,
      sasl: this.opts.sasl,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      requestTimeoutMs: this.opts.requestTimeoutMs,
      ...(this.opts.maxFrameBytes !== undefined ? { maxFrameBytes: this.opts.maxFrameBytes } : {}),
    });
    const p = c.connect().then(() => c);
    this.conns.set(key, p);
    p.catch(() => {
      if (this.conns.get(key) === p) this.conns.delete(key);
    });
    return p;
  }

  /** The first bootstrap (or known) broker that answers. */
  private async anyConnection(): Promise<BrokerConnection> {
    const candidates = [...this.opts.brokers.map(parseBroker), ...[...this.nodes.values()].map((n) => ({ host: n.host, port: n.port }))];
    let last: unknown = new KafkaConnectionError('no kafka broker reachable');
    for (const b of candidates) {
      try {
        return await this.connection(b.host, b.port);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  private async leaderConnection(nodeId: number): Promise<BrokerConnection> {
    const n = this.nodes.get(nodeId);
    if (!n) throw new KafkaConnectionError(`kafka broker ${nodeId} unknown to metadata`);
    return this.connection(n.host, n.port);
  }

  // ---- producer id and metadata

  private async initProducerId(): Promise<void> {
    const c = await this.anyConnection();
    const r = await c.request(API.InitProducerId, encodeInitProducerId, decodeInitProducerId);
    if (r.errorCode !== ERR.NONE) throw new KafkaProtocolError(r.errorCode, 'InitProducerId');
    this.producerId = r.producerId;
    this.epoch = r.epoch;
    this.sequences.clear();
    this.opts.logger.debug({ producerId: String(r.producerId), epoch: r.epoch }, 'kafka producer id');
  }

  private async refreshMetadata(topic: string): Promise<TopicState> {
    const c = await this.anyConnection();
    const m = await c.request(API.Metadata, encodeMetadata([topic]), decodeMetadata);
    if (m.brokers.length > 0) {
      this.nodes.clear();
      for (const b of m.brokers) this.nodes.set(b.nodeId, b);
    }
    const t = m.topics.find((x) => x.name === topic);
    const state: TopicState = { errorCode: t ? t.errorCode : ERR.UNKNOWN_TOPIC_OR_PARTITION, leaders: [] };
    if (t && t.errorCode === ERR.NONE) {
      const n = t.partitions.length;
      state.leaders = Array.from({ length: n }, () => -1);
      for (const p of t.partitions) {
        if (p.partition < 0 || p.partition >= n) throw new KafkaProtocolError(ERR.UNKNOWN_TOPIC_OR_PARTITION, `metadata for ${topic}: partition ${p.partition} of ${n}`);
        state.leaders[p.partition] = p.errorCode === ERR.NONE || p.errorCode === ERR.LEADER_NOT_AVAILABLE ? p.leader : -1;
      }
      if (n === 0) state.errorCode = ERR.LEADER_NOT_AVAILABLE;
    }
    if (state.errorCode === ERR.NONE) this.topics.set(topic, state);
    else this.topics.delete(topic);
    return state;
  }

  /** Runs `f` up to 1 + retries times while it fails with a retriable error, with exponential back-off. */
  private async withRetries<T>(what: string, f: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await f(attempt);
      } catch (err) {
        const retriable = err instanceof KafkaConnectionError || (err instanceof KafkaProtocolError && err.retriable);
        if (!retriable || attempt >= this.opts.retries || this.closed) throw err;
        this.opts.logger.debug({ err: (err as Error).message, attempt }, `kafka ${what}: retrying`);
        await sleep(Math.min(this.opts.maxRetryMs, this.opts.initialRetryMs * 2 ** attempt));
      }
    }
  }

  // ---- produce

  private async sendNow(topic: string, messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    if (this.closed) throw new KafkaConnectionError('kafka producer disconnected');
    if (this.producerId === null) await this.withRetries('InitProducerId', () => this.initProducerId());
    let byPartition: Map<number, Message[]> | null = null;
    let forceMetadata = false;
    await this.withRetries(`produce to ${topic}`, async () => {
      let state = this.topics.get(topic);
      if (!state || forceMetadata) state = await this.refreshMetadata(topic);
      forceMetadata = true; // any failure below re-reads metadata on the next attempt
      if (state.errorCode !== ERR.NONE) throw new KafkaProtocolError(state.errorCode, `metadata for topic ${topic}`);
      if (!byPartition) {
        byPartition = new Map();
        for (const m of messages) {
          const p = partitionForKey(m.key, state.leaders.length);
          const list = byPartition.get(p);
          if (list) list.push(m);
          else byPartition.set(p, [m]);
        }
      }
      const byLeader = new Map<number, number[]>();
      for (const p of byPartition.keys()) {
        const leader = state.leaders[p] ?? -1;
        if (leader < 0) throw new KafkaProtocolError(ERR.LEADER_NOT_AVAILABLE, `no leader for ${topic}/${p}`);
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
      }
      const parts = byPartition;
      const results = await Promise.allSettled([...byLeader].map(([leader, ps]) => this.produceTo(leader, topic, ps.map((p) => ({ partition: p, messages: parts.get(p) ?? [] })))));
      let firstError: Error | null = null;
      let reinit = 0;
      for (const r of results) {
        if (r.status === 'fulfilled') {
          for (const { partition, errorCode } of r.value) {
            if (errorCode === ERR.NONE || errorCode === ERR.DUPLICATE_SEQUENCE_NUMBER) {
              this.advance(topic, partition, parts.get(partition)?.length ?? 0);
              parts.delete(partition);
            } else {
              if (needsNewProducerId(errorCode)) reinit = errorCode;
              firstError ??= new KafkaProtocolError(errorCode, `produce to ${topic}/${partition}`);
            }
          }
        } else firstError ??= r.reason instanceof Error ? r.reason : new Error(String(r.reason));
      }
      if (parts.size === 0) return;
      if (reinit) {
        this.opts.logger.warn({ topic }, 'kafka broker lost this producer\'s sequence: taking a new producer id');
        await this.initProducerId();
        throw new KafkaProtocolError(reinit, `produce to ${topic}: resending under a new producer id after`, true);
      }
      throw firstError ?? new KafkaConnectionError(`produce to ${topic}: no response for ${parts.size} partitions`);
    });
  }

  private async produceTo(leader: number, topic: string, batches: Array<{ partition: number; messages: Message[] }>): Promise<Array<{ partition: number; errorCode: number }>> {
    const c = await this.leaderConnection(leader);
    const pid = this.producerId ?? -1n;
    const withSeq: PartitionBatch[] = batches.map((b) => ({ ...b, baseSequence: this.sequences.get(`${topic}\0${b.partition}`) ?? 0 }));
    const res = await c.request(API.Produce, encodeProduce(topic, pid, this.epoch, withSeq, this.opts.requestTimeoutMs), (r) => decodeProduce(r, topic));
    const asked = new Set(batches.map((b) => b.partition));
    const out = res.filter((x) => asked.has(x.partition));
    for (const b of batches) if (!out.some((x) => x.partition === b.partition)) out.push({ partition: b.partition, errorCode: ERR.NETWORK_EXCEPTION, baseOffset: -1n });
    for (const x of out) if (x.errorCode !== ERR.NONE) this.opts.logger.debug({ topic, partition: x.partition, error: errorName(x.errorCode) }, 'kafka produce error');
    return out;
  }

  private advance(topic: string, partition: number, count: number): void {
    const key = `${topic}\0${partition}`;
    this.sequences.set(key, ((this.sequences.get(key) ?? 0) + count) % SEQ_MOD);
  }
}

