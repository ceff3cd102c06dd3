/**
 * Toggle audit records in the shared Redis ledger stream, next to decision
 * records. Decision entries carry their JSON in field `rec`; audit entries
 * use field `audit`, so readers that only know decision records skip them.
 */
import type { Redis } from 'ioredis';
import { ledgerStreamKey } from '../../adapters/redis/keys.js';
import type { AuditRecord, ToggleAuditSink } from './port.js';

export const AUDIT_FIELD = 'audit';

export class RedisToggleAuditSink implements ToggleAuditSink {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly maxLen = 100_000,
  ) {
    this.key = ledgerStreamKey(keyPrefix);
  }

  async append(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const p = this.redis.pipeline();
    for (const r of records) p.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', AUDIT_FIELD, JSON.stringify(r));
    const res = await p.exec();
    const failed = (res ?? []).find(([e]) => e !== null);
    if (failed?.[0]) throw failed[0];
  }
}
