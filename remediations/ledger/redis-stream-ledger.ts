/**
 * The ledger in a Redis stream shared by every engine replica (key
 * `<prefix>ledger`). Decision records carry their JSON in field `rec`,
 * operator audits in field `audit` (readers that only know decision records
 * skip them). Appends are XADD with an approximate MAXLEN bound (old entries
 * fall off, memory stays bounded); a decision record whose key (record.ts
 * `ledgerKey`: decision id and attempt, pending-approval apart) was appended
 * within `seenTtlMs` is not appended again, in the same atomic script
 * (lua/append.lua), so readers need no dedupe. Queries read back newest
 * first, paging with XREVRANGE until `limit` entries match; the trim-state
 * job trims to an exact MAXLEN and by age (stream ids carry the append time).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LedgerRecord } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import { ledgerSeenKey, ledgerStreamKey } from '../../adapters/redis/keys.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import type { AuditRecord, LedgerEntry, LedgerQuery } from './entry.js';
import { filterLedger, isAudit } from './entry.js';
import { ledgerKey } from './record.js';
import type { LedgerStore, LedgerTrim } from './store.js';

/** Stream field of a decision record. */
const RECORD_FIELD = 'rec';
/** Stream field of an operator audit record. */
const AUDIT_FIELD = 'audit';

export interface RedisStreamLedgerOptions {
  redis: Redis;
  /** Config `redis.keyPrefix`. */
  keyPrefix: string;
  /** Approximate bound on the stream length (default 100,000). */
  maxLen?: number;
  /** How long a record's key is remembered (default 24 h, the guard's idempotency TTL). */
  seenTtlMs?: number;
  /** Entries a query reads per XREVRANGE (default 500). */
  pageSize?: number;
}

export class RedisStreamLedger implements LedgerStore {
  readonly name = 'redis-stream';
  readonly key: string;
  private readonly maxLen: number;
  private readonly pageSize: number;
  constructor(private readonly o: RedisStreamLedgerOptions) {
    this.key = ledgerStreamKey(o.keyPrefix);
    this.maxLen = o.maxLen ?? 100_000;
    this.pageSize = o.pageSize ?? 500;
  }

  async append(entries: readonly LedgerEntry[]): Promise<void> {
    // in order: each run of decision records in one script call, each run of audits in one pipeline
    let i = 0;
    while (i < entries.length) {
      const audit = isAudit(entries[i] as LedgerEntry);
      let j = i;
      while (j < entries.length && isAudit(entries[j] as LedgerEntry) === audit) j++;
      const run = entries.slice(i, j);
      if (audit) await this.appendAudits(run as AuditRecord[]);
      else await this.appendRecords(run as LedgerRecord[]);
      i = j;
    }
  }

  private async appendRecords(records: readonly LedgerRecord[]): Promise<void> {
    // a record without a key (none today: remediator records all carry a decision id) gets a fresh one: always appended
    const seenKeys = records.map((r) => ledgerSeenKey(this.o.keyPrefix, ledgerKey(r) ?? `nokey:${randomUUID()}`));
    try {
      await redisScript('ledger.append').run(this.o.redis, [this.key, ...seenKeys], [this.maxLen, this.o.seenTtlMs ?? 86_400_000, ...records.map((r) => JSON.stringify(r))]);
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `ledger: redis append: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  private async appendAudits(records: readonly AuditRecord[]): Promise<void> {
    const p = this.o.redis.pipeline();
    for (const r of records) p.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', AUDIT_FIELD, JSON.stringify(r));
    const res = await p.exec();
    const failed = (res ?? []).find(([e]) => e !== null);
    if (failed?.[0]) throw failed[0];
  }

  async query(q: LedgerQuery): Promise<LedgerEntry[]> {
    const out: LedgerEntry[] = [];
    // Always from the newest entry: a record's `ts` need not be its append time
    // (backfills, replays), so stream ids cannot bound `until`; MAXLEN bounds the scan.
    let end = '+';
    for (;;) {
      const page = await this.o.redis.xrevrange(this.key, end, '-', 'COUNT', this.pageSize);
      const entries: LedgerEntry[] = [];
      for (const [, fields] of page) {
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] !== RECORD_FIELD && fields[i] !== AUDIT_FIELD) continue;
          try {
            entries.push(JSON.parse(fields[i + 1] as string) as LedgerEntry);
          } catch {
            // a malformed entry is skipped, never fatal to a query
          }
        }
      }
      out.push(...filterLedger(entries, { ...q, limit: q.limit - out.length }));
      if (out.length >= q.limit || page.length < this.pageSize) break;
      const lastId = page[page.length - 1]?.[0];
      if (lastId === undefined) break;
      // Older than `since` by append time (with a minute of clock slack between replicas): stop.
      if (q.since !== undefined && Number(lastId.split('-')[0]) < q.since - 60_000) break;
      end = `(${lastId}`;
    }
    return out.sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts)).slice(0, q.limit);
  }

  /** Exact MAXLEN, then MINID by age (stream ids start with the append time in ms). */
  async trim(now: number, bounds: LedgerTrim): Promise<number> {
    const byLen = await this.o.redis.xtrim(this.key, 'MAXLEN', '=', bounds.maxLen);
    const byAge = await this.o.redis.xtrim(this.key, 'MINID', '=', `${Math.max(0, now - bounds.maxAgeMs)}-0`);
    return Number(byLen) + Number(byAge);
  }
}
