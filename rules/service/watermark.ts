/**
 * Event time for the engine's tick. Time-driven rules (absent, sustained,
 * clear-after) compare state written in EVENT time with the tick's `now`. While
 * the consumer works through a backlog (after an outage), wall time runs far
 * ahead of the events processed so far: every `absent` rule would fire for the
 * whole fleet (a page storm) although the heartbeats are right there in the
 * backlog. So the tick runs in event time while lagging:
 *
 *   per assigned partition: wall time once it is caught up (lag 0 after its last
 *   batch) or idle (no batch for `idleMs`), else the latest event time processed
 *   from it (null = nothing processed yet: hold);
 *   tick time = the minimum over partitions (a low watermark), capped at wall time.
 *
 * `WatermarkBoard` shares the per-partition marks between replicas (the state
 * they tick over is shared), so a replica that is caught up does not fire for
 * nodes whose events another replica has not processed yet.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import { watermarkKey } from '../../adapters/redis/keys.js';

/** One partition's contribution to the tick time: a time in ms, or null (hold the tick). */
export interface PartitionMark {
  partition: number;
  ts: number | null;
}

interface PartitionState {
  /** Latest event time processed (ms), or null before the first event. */
  eventTs: number | null;
  caughtUp: boolean;
  /** Wall time of the last batch (or of the assignment). */
  lastActivity: number;
}

export class PartitionWatermarks {
  private readonly parts = new Map<number, PartitionState>();

  constructor(
    private readonly clock: Clock,
    /** A partition with no batch for this long is idle: it follows wall time. */
    private readonly idleMs: number,
  ) {}

  /** The partitions now assigned to this replica (a rebalance replaces the set). */
  assign(partitions: readonly number[]): void {
    const now = this.clock.now();
    const keep = new Set(partitions);
    for (const p of this.parts.keys()) if (!keep.has(p)) this.parts.delete(p);
    for (const p of partitions) if (!this.parts.has(p)) this.parts.set(p, { eventTs: null, caughtUp: false, lastActivity: now });
  }

  /** After a processed chunk: its latest event time (null if it had no valid event) and the lag left behind it. */
  observe(partition: number, maxEventTs: number | null, lag: number): void {
    let s = this.parts.get(partition);
    if (!s) {
      s = { eventTs: null, caughtUp: false, lastActivity: 0 };
      this.parts.set(partition, s);
    }
    if (maxEventTs !== null && (s.eventTs === null || maxEventTs > s.eventTs)) s.eventTs = maxEventTs;
    s.caughtUp = lag <= 0;
    s.lastActivity = this.clock.now();
  }

  marks(): PartitionMark[] {
    const now = this.clock.now();
    return [...this.parts].map(([partition, s]) => {
      if (s.caughtUp || now - s.lastActivity >= this.idleMs) return { partition, ts: now };
      return { partition, ts: s.eventTs === null ? null : Math.min(s.eventTs, now) };
    });
  }
}

/** The low watermark of marks: null if any holds; `now` when there are none. */
export function lowWatermark(marks: readonly PartitionMark[], now: number): number | null {
  let low = now;
  for (const m of marks) {
    if (m.ts === null) return null;
    if (m.ts < low) low = m.ts;
  }
  return low;
}

/** Shares partition marks between the replicas of one consumer group. */
export interface WatermarkBoard {
  /** Publishes this replica's marks; returns the tick time over every replica's (null: hold the tick). */
  exchange(mine: readonly PartitionMark[], now: number): Promise<number | null>;
}

/** One replica (embedded engine, tests): only its own marks count. */
export class LocalWatermarkBoard implements WatermarkBoard {
  exchange(mine: readonly PartitionMark[], now: number): Promise<number | null> {
    return Promise.resolve(lowWatermark(mine, now));
  }
}

/**
 * Redis hash `<prefix>engine:watermarks:<group>:<topic>`: partition →
 * `<ts or ->|<written at>`. Entries not refreshed for `staleMs` (a replica that
 * died, a partition revoked and not yet reassigned) are ignored.
 */
export class RedisWatermarkBoard implements WatermarkBoard {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    groupId: string,
    topic: string,
    private readonly staleMs: number,
  ) {
    this.key = watermarkKey(keyPrefix, groupId, topic);
  }

  async exchange(mine: readonly PartitionMark[], now: number): Promise<number | null> {
    const p = this.redis.pipeline();
    if (mine.length > 0) {
      const fields: Record<string, string> = {};
      for (const m of mine) fields[String(m.partition)] = `${m.ts === null ? '-' : Math.round(m.ts)}|${now}`;
      p.hset(this.key, fields);
      p.pexpire(this.key, Math.max(60_000, this.staleMs * 10));
    }
    p.hgetall(this.key);
    const res = await p.exec();
    const last = res?.[res.length - 1];
    if (!last || last[0]) throw last?.[0] ?? new Error('watermark board: pipeline aborted');
    const all = last[1] as Record<string, string>;
    const marks: PartitionMark[] = [];
    const own = new Set(mine.map((m) => m.partition));
    for (const m of mine) marks.push(m);
    for (const [field, v] of Object.entries(all)) {
      const partition = Number(field);
      if (own.has(partition)) continue;
      const [ts, at] = v.split('|');
      if (!(Number(at) > now - this.staleMs)) continue;
      marks.push({ partition, ts: ts === '-' ? null : Number(ts) });
    }
    return lowWatermark(marks, now);
  }
}
