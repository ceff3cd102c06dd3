/**
 * The subset of the Kafka protocol the agent's producer speaks (ADR 0040):
 * only non-flexible versions (no tagged fields), request header v1, response
 * header v0.
 *
 *   ApiVersions     (18) v1   request: (empty)
 *                             response: error_code int16, [api_key int16, min int16, max int16], throttle_time_ms int32
 *   SaslHandshake   (17) v1   request: mechanism string; response: error_code int16, [mechanism string]
 *   SaslAuthenticate(36) v1   request: auth_bytes bytes
 *                             response: error_code int16, error_message nullable string, auth_bytes bytes, session_lifetime_ms int64
 *   Metadata         (3) v5   request: [topic string], allow_auto_topic_creation bool
 *                             response: throttle int32, [broker: node_id int32, host string, port int32, rack nullable string],
 *                               cluster_id nullable string, controller_id int32,
 *                               [topic: error_code int16, name string, is_internal bool,
 *                                 [partition: error_code int16, index int32, leader int32, [replica int32], [isr int32], [offline int32]]]
 *   InitProducerId  (22) v1   request: transactional_id nullable string (null), transaction_timeout_ms int32
 *                             response: throttle int32, error_code int16, producer_id int64, producer_epoch int16
 *   Produce          (0) v7   request: transactional_id nullable string (null), acks int16, timeout_ms int32,
 *                               [topic string, [partition int32, records bytes (one RecordBatch v2)]]
 *                             response: [topic string, [partition int32, error_code int16, base_offset int64,
 *                               log_append_time int64, log_start_offset int64]], throttle int32
 *
 * RecordBatch v2 (magic 2), uncompressed, not transactional, CRC-32C over
 * attributes..end; each record: length varint, attributes int8, timestamp
 * delta varlong, offset delta varint, key varint-bytes, value varint-bytes,
 * 0 headers. Byte-identical to what kafkajs 2.2.4 sends for the same batch.
 */
import { crc32c } from './crc32c.js';
import { MalformedResponseError, Writer } from './codec.js';
import type { Reader } from './codec.js';

export const API = { Produce: 0, Metadata: 3, SaslHandshake: 17, ApiVersions: 18, InitProducerId: 22, SaslAuthenticate: 36 } as const;
export type ApiKey = (typeof API)[keyof typeof API];
/** The version used for each API; the broker must support it (checked against ApiVersions). */
export const VERSION: Record<ApiKey, number> = { 0: 7, 3: 5, 17: 1, 18: 1, 22: 1, 36: 1 };

/** Error codes the producer acts on (others are reported by number and name if known). */
export const ERR = {
  NONE: 0,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  NETWORK_EXCEPTION: 13,
  COORDINATOR_LOAD_IN_PROGRESS: 14,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  UNSUPPORTED_VERSION: 35,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  SASL_AUTHENTICATION_FAILED: 58,
  UNKNOWN_PRODUCER_ID: 59,
  KAFKA_STORAGE_ERROR: 56,
  NOT_CONTROLLER: 41,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_LEADER_EPOCH: 75,
  OFFSET_NOT_AVAILABLE: 78,
  PREFERRED_LEADER_NOT_AVAILABLE: 80,
  THROTTLING_QUOTA_EXCEEDED: 89,
} as const;

const NAMES = new Map<number, string>(Object.entries(ERR).map(([k, v]) => [v, k]));
export const errorName = (code: number): string => NAMES.get(code) ?? `ERROR_${code}`;

/** Fixed by a metadata refresh and a resend with the same producer id and sequence. */
const RETRIABLE = new Set<number>([
  ERR.CORRUPT_MESSAGE, ERR.UNKNOWN_TOPIC_OR_PARTITION, ERR.LEADER_NOT_AVAILABLE, ERR.NOT_LEADER_OR_FOLLOWER, ERR.REQUEST_TIMED_OUT,
  ERR.NETWORK_EXCEPTION, ERR.COORDINATOR_LOAD_IN_PROGRESS, ERR.COORDINATOR_NOT_AVAILABLE, ERR.NOT_COORDINATOR, ERR.NOT_ENOUGH_REPLICAS,
  ERR.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ERR.KAFKA_STORAGE_ERROR, ERR.NOT_CONTROLLER, ERR.FENCED_LEADER_EPOCH, ERR.UNKNOWN_LEADER_EPOCH,
  ERR.OFFSET_NOT_AVAILABLE, ERR.PREFERRED_LEADER_NOT_AVAILABLE, ERR.THROTTLING_QUOTA_EXCEEDED,
]);
export const isRetriable = (code: number): boolean => RETRIABLE.has(code);
/** The broker no longer accepts this producer id/epoch/sequence: a new producer id is needed. */
export const needsNewProducerId = (code: number): boolean =>
  code === ERR.OUT_OF_ORDER_SEQUENCE_NUMBER || code === ERR.UNKNOWN_PRODUCER_ID || code === ERR.INVALID_PRODUCER_EPOCH;

export class KafkaProtocolError extends Error {
  readonly retriable: boolean;
  constructor(
    readonly code: number,
    context: string,
    /** Default: whether the code is one a metadata refresh and a resend fix. */
    retriable = isRetriable(code),
  ) {
    super(`kafka ${context}: ${errorName(code)} (${code})`);
    this.name = 'KafkaProtocolError';
    this.retriable = retriable;
  }
}

/** A whole request frame: int32 size, header v1 (api key, version, correlation id, client id), body. */
export function frame(api: ApiKey, correlationId: number, clientId: string, body: (w: Writer) => void): Buffer {
  const w = new Writer(256);
  w.int32(0).int16(api).int16(VERSION[api]).int32(correlationId).string(clientId);
  body(w);
  w.patchInt32(0, w.length - 4);
  return Buffer.from(w.view());
}

// ---- ApiVersions v1
export interface ApiRange {
  key: number;
  min: number;
  max: number;
}
export function decodeApiVersions(r: Reader): { errorCode: number; apis: ApiRange[] } {
  const errorCode = r.int16();
  const apis = r.array(6, (x) => ({ key: x.int16(), min: x.int16(), max: x.int16() }));
  // v1 ends with throttle_time_ms; a broker that answers an unsupported version with v0 (error 35) omits it.
  if (r.remaining >= 4) r.int32();
  return { errorCode, apis };
}
/** The first API the broker does not support in the version we use, or null. */
export function unsupportedApi(apis: ApiRange[], needed: readonly ApiKey[]): string | null {
  for (const key of needed) {
    const a = apis.find((x) => x.key === key);
    const v = VERSION[key];
    if (!a || v < a.min || v > a.max) return `api ${key} v${v} (broker: ${a ? `v${a.min}-v${a.max}` : 'absent'})`;
  }
  return null;
}

// ---- SaslHandshake v1, SaslAuthenticate v1
export const encodeSaslHandshake = (mechanism: string) => (w: Writer): void => void w.string(mechanism);
export function decodeSaslHandshake(r: Reader): { errorCode: number; mechanisms: string[] } {
  return { errorCode: r.int16(), mechanisms: r.array(2, (x) => x.string()) };
}
export const encodeSaslAuthenticate = (bytes: Uint8Array) => (w: Writer): void => void w.bytes(bytes);
export function decodeSaslAuthenticate(r: Reader): { errorCode: number; errorMessage: string | null; bytes: Buffer } {
  const errorCode = r.int16();
  const errorMessage = r.nullableString();
  const bytes = r.nullableBytes() ?? Buffer.alloc(0);
  r.int64();
  return { errorCode, errorMessage, bytes };
}

// ---- Metadata v5
export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
}
export interface PartitionMeta {
  errorCode: number;
  partition: number;
  leader: number;
}
export interface TopicMeta {
  errorCode: number;
  name: string;
  partitions: PartitionMeta[];
}
export const encodeMetadata = (topics: readonly string[]) => (w: Writer): void =>
  void w.array(topics, (x, t) => x.string(t)).bool(false);
export function decodeMetadata(r: Reader): { brokers: BrokerAddress[]; topics: TopicMeta[] } {
  r.int32();
  const brokers = r.array(12, (x) => {
    const b = { nodeId: x.int32(), host: x.string(), port: x.int32() };
    x.nullableString();
    return b;
  });
  r.nullableString();
  r.int32();
  const intList = (x: Reader): number[] => x.array(4, (y) => y.int32());
  const topics = r.array(9, (x) => {
    const errorCode = x.int16();
    const name = x.string();
    x.bool();
    const partitions = x.array(22, (y) => {
      const p = { errorCode: y.int16(), partition: y.int32(), leader: y.int32() };
      intList(y);
      intList(y);
      intList(y);
      return p;
    });
    return { errorCode, name, partitions };
  });
  return { brokers, topics };
}

// ---- InitProducerId v1
export const encodeInitProducerId = (w: Writer): void => void w.string(null).int32(60_000);
export function decodeInitProducerId(r: Reader): { errorCode: number; producerId: bigint; epoch: number } {
  r.int32();
  return { errorCode: r.int16(), producerId: r.int64(), epoch: r.int16() };
}

// ---- Produce v7
export interface Message {
  key: string;
  value: string;
  timestamp?: string;
}
export interface PartitionBatch {
  partition: number;
  baseSequence: number;
  messages: readonly Message[];
}

/** One RecordBatch v2 (magic 2) holding `messages`, uncompressed. */
export function encodeRecordBatch(w: Writer, producerId: bigint, epoch: number, baseSequence: number, messages: readonly Message[], now = Date.now()): void {
  const ts = messages.map((m) => (m.timestamp !== undefined && m.timestamp !== '' ? Number(m.timestamp) : now));
  const given = ts.filter((_, i) => messages[i]?.timestamp !== undefined && messages[i]?.timestamp !== '');
  const first = given.length ? Math.min(...given) : now;
  const max = given.length ? Math.max(...given) : now;
  w.int64(0); // base offset
  const lengthAt = w.length;
  w.int32(0); // batch length, patched
  w.int32(0); // partition leader epoch (the broker sets it)
  w.int8(2); // magic
  const crcAt = w.length;
  w.uint32(0); // crc, patched
  const bodyAt = w.length;
  w.int16(0).int32(messages.length - 1).int64(first).int64(max).int64(producerId).int16(epoch).int32(baseSequence).int32(messages.length);
  const rec = new Writer(128);
  messages.forEach((m, i) => {
    const key = Buffer.from(m.key, 'utf8');
    const value = Buffer.from(m.value, 'utf8');
    rec.int8(0).varint((ts[i] as number) - first).varint(i).varint(key.length).raw(key).varint(value.length).raw(value).varint(0);
    const body = rec.view();
    w.varint(body.length).raw(body);
    rec.reset();
  });
  const view = w.view();
  w.patchInt32(lengthAt, view.length - lengthAt - 4);
  w.patchUInt32(crcAt, crc32c(view, bodyAt, view.length));
}

export const encodeProduce = (topic: string, producerId: bigint, epoch: number, batches: readonly PartitionBatch[], timeoutMs: number) => (w: Writer): void => {
  w.string(null).int16(-1).int32(timeoutMs).int32(1).string(topic);
  w.array(batches, (x, b) => {
    x.int32(b.partition);
    const sizeAt = x.length;
    x.int32(0);
    encodeRecordBatch(x, producerId, epoch, b.baseSequence, b.messages);
    x.patchInt32(sizeAt, x.length - sizeAt - 4);
  });
};
export interface PartitionResult {
  partition: number;
  errorCode: number;
  baseOffset: bigint;
}
export function decodeProduce(r: Reader, topic: string): PartitionResult[] {
  const out: PartitionResult[] = [];
  for (const t of r.array(4, (x) => ({ name: x.string(), parts: x.array(30, (y) => {
    const p = { partition: y.int32(), errorCode: y.int16(), baseOffset: y.int64() };
    y.int64();
    y.int64();
    return p;
  }) }))) {
    if (t.name !== topic) throw new MalformedResponseError(`produce response for topic ${t.name}, asked ${topic}`);
    out.push(...t.parts);
  }
  r.int32();
  return out;
}
