/**
 * Routed episode releases (ADR 0049): in partition-local mode (ADR 0045) the
 * state of a node-scoped rule lives in the memory of the replica that owns
 * the node's partition of the events topic. A ladder return (ADR 0034,
 * "Return ends the rule's episode") on another replica cannot end that
 * episode in its own store, so it publishes this small internal record on
 * the events topic, keyed by the node name exactly as the agent keys the
 * node's events: it lands on the node's partition and the owner applies it in
 * order with the node's events (rules/service/batch-processor.ts).
 *
 * The record is marked by a Kafka header (never by its value, so an event is
 * never parsed twice) and is untrusted input like any envelope: bounded in
 * size, strictly validated, and it can only end node-scoped episodes of the
 * node that keys it — exactly what a ladder release of that node could do.
 */
import { randomBytes } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { sendJsonRecords } from '../../adapters/kafka/json-records.js';
import type { InputProblem } from '../../core/errors.js';
import { PoisonInputError } from '../../core/errors.js';
import { MAX_ISOLATING_EPISODES } from '../../core/held-fault.js';
import type { RuleScope } from '../../core/held-fault.js';
import { isRecord } from '../../core/records.js';
import { MAX_ID, MAX_NODE, parseJsonInput, rfc3339Ms } from '../../core/envelope.js';

/** The Kafka header that marks an internal record on the events topic, and its value for a release. */
export const RECORD_HEADER = 'nodewarden-record';
export const RELEASE_RECORD = 'episode-release/1';
/** Longest header value read (a longer one is not a record this build knows: dead-lettered). */
export const MAX_RECORD_HEADER = 64;
/** Longest release record (8 episodes of the longest rule id and scope fit in well under this). */
const MAX_RELEASE_BYTES = 16 * 1024;
const MAX_RULE = 128;
const MAX_SCOPE = 1024;

/** `{ v: 1, kind, id, ts, node, episodes }` — one JSON object per Kafka message, key = node. */
export interface ReleaseRecord {
  v: 1;
  kind: 'episode-release';
  /** Dedupe id (`nw-release-<hex>`): a redelivered record is applied once, like an event. */
  id: string;
  /** When the releasing replica asked (its clock); bounded like an event's time. */
  ts: string;
  node: string;
  /** Node-scoped rule episodes of `node` (scope `n:<node>` or `n:<node>|…`), 1..8. */
  episodes: RuleScope[];
}

/** Whether `scope` is a node scope of `node` (`n:<node>` or `n:<node>|<by>…`). */
function scopeOfNode(scope: string, node: string): boolean {
  const head = `n:${node}`;
  return scope === head || (scope.startsWith(head) && scope.charCodeAt(head.length) === 0x7c /* | */);
}

export function newReleaseRecord(node: string, episodes: readonly RuleScope[], now: number): ReleaseRecord {
  return { v: 1, kind: 'episode-release', id: `nw-release-${randomBytes(12).toString('hex')}`, ts: new Date(now).toISOString(), node, episodes: episodes.map((e) => ({ rule: e.rule, scope: e.scope })) };
}

function releaseProblems(v: unknown, key: string | null): InputProblem[] {
  const problems: InputProblem[] = [];
  if (!isRecord(v)) return [{ path: '', message: 'must be a JSON object' }];
  for (const k of Object.keys(v)) if (!['v', 'kind', 'id', 'ts', 'node', 'episodes'].includes(k)) problems.push({ path: `/${k}`, message: 'unknown field' });
  if (v.v !== 1) problems.push({ path: '/v', message: 'must be 1' });
  if (v.kind !== 'episode-release') problems.push({ path: '/kind', message: 'must be "episode-release"' });
  if (typeof v.id !== 'string' || v.id.length === 0 || v.id.length > MAX_ID) problems.push({ path: '/id', message: `must be a non-empty string of at most ${MAX_ID} characters` });
  if (!Number.isFinite(rfc3339Ms(v.ts))) problems.push({ path: '/ts', message: 'must be an RFC 3339 time' });
  const node = typeof v.node === 'string' && v.node.length > 0 && v.node.length <= MAX_NODE && !v.node.includes('|') ? v.node : null;
  if (node === null) problems.push({ path: '/node', message: `must be a node name (at most ${MAX_NODE} characters, no '|')` });
  // the key decides the partition: a record keyed by another node would be applied by the wrong owner, out of order
  else if (key !== node) problems.push({ path: '/node', message: 'must equal the message key (the node its events are keyed by)' });
  if (!Array.isArray(v.episodes) || v.episodes.length === 0 || v.episodes.length > MAX_ISOLATING_EPISODES) {
    problems.push({ path: '/episodes', message: `must be a list of 1 to ${MAX_ISOLATING_EPISODES} rule episodes` });
    return problems;
  }
  v.episodes.forEach((e: unknown, i: number) => {
    if (!isRecord(e) || Object.keys(e).length !== 2 || typeof e.rule !== 'string' || typeof e.scope !== 'string') {
      problems.push({ path: `/episodes/${i}`, message: 'must be { rule, scope } strings' });
      return;
    }
    if (e.rule.length === 0 || e.rule.length > MAX_RULE) problems.push({ path: `/episodes/${i}/rule`, message: `must be a rule id of at most ${MAX_RULE} characters` });
    if (e.scope.length > MAX_SCOPE || node === null || !scopeOfNode(e.scope, node)) problems.push({ path: `/episodes/${i}/scope`, message: `must be a node scope of the record's node (n:<node> or n:<node>|…), at most ${MAX_SCOPE} characters` });
  });
  return problems;
}

/** Parses and validates one release record (Kafka value and key), or throws a PoisonInputError listing every problem. */
export function decodeReleaseRecord(text: string, key: string | null, source?: string): ReleaseRecord {
  if (text.length > MAX_RELEASE_BYTES) throw new PoisonInputError('EVENT_INVALID', source, [{ path: '', message: `release record longer than ${MAX_RELEASE_BYTES} characters` }]);
  const raw = parseJsonInput(text, source);
  const problems = releaseProblems(raw, key);
  if (problems.length > 0) throw new PoisonInputError('EVENT_INVALID', source, problems);
  return raw as ReleaseRecord;
}

/** Where a routed release goes: the events topic, keyed by the node. */
type ReleasePublisher = (record: ReleaseRecord) => Promise<void>;

/**
 * Publishes release records on the events topic, keyed by the node as the
 * agent keys its events (kafkajs's default partitioner is the agent's murmur2,
 * agent/publisher/kafka-wire/murmur2.ts), acks=all, marked by the header.
 */
export function kafkaReleasePublisher(producer: Producer, topic: string): ReleasePublisher {
  return (r) => sendJsonRecords(producer, topic, [r], (x) => ({ key: x.node, headers: { [RECORD_HEADER]: RELEASE_RECORD } }));
}
