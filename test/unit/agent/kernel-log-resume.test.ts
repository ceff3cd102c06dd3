/**
 * The kernel-log collector's resume cursor (agent.stateDir): a restarted agent
 * reads on after the last record whose events settled, and a record read twice
 * keeps its event id (the engine drops the second by id).
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CollectorContext, Emit } from '../../../agent/collector.js';
import { createKernelLogCollector, recordEventId } from '../../../agent/collectors/kernel-log.js';
import { fileCursorStore } from '../../../agent/collectors/kernel-log-cursor.js';
import type { CursorStore, KernelLogCursor } from '../../../agent/collectors/kernel-log-cursor.js';
import { systemClock } from '../../../core/clock.js';
import type { EventEnvelope, EventType } from '../../../core/envelope.js';
import { UlidFactory } from '../../../core/ids.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';

function makeCtx(hostRoot: string): CollectorContext {
  const ids = new UlidFactory();
  return {
    node: 'gpu-worker-042',
    labels: {},
    hostRoot,
    clock: systemClock,
    logger: silentLogger,
    registry: createRegistry('agent'),
    newEvent<D extends object>(type: EventType, source: string, data: D, observedAt?: number): EventEnvelope {
      const t = observedAt ?? Date.now();
      return { v: 1, id: ids.next(t), ts: new Date(t).toISOString(), node: 'gpu-worker-042', type, source, labels: {}, data: data as Record<string, unknown> };
    },
  };
}

function memoryCursor(): CursorStore & { saved: KernelLogCursor | undefined; writes: number } {
  const s = {
    saved: undefined as KernelLogCursor | undefined,
    writes: 0,
    load: () => Promise.resolve(s.saved),
    save: (c: KernelLogCursor) => {
      s.saved = c;
      s.writes += 1;
      return Promise.resolve();
    },
  };
  return s;
}

const xid = (pid: number) => `4,${pid},${1_000_000 + pid},-;NVRM: Xid (PCI:0000:3b:00): 79, pid=${pid}, name=train, GPU has fallen off the bus.\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(fn: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('kernel-log resume cursor', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nw-klr-'));
    file = path.join(dir, 'kmsg');
    await fsp.writeFile(file, '6,1,1000,-;NVRM: loading NVIDIA UNIX x86_64 Kernel Module\n');
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('an agent killed before Kafka acknowledged re-reads those records under the same ids; settled ones are not read again', async () => {
    const cursor = memoryCursor();
    // Run 1: events of pids 2 and 3 are delivered (settled), pid 4 is in flight when the agent dies.
    const run1: EventEnvelope[] = [];
    let settleNow = true;
    const pending: Array<() => void> = [];
    const emit1: Emit = (evs, onSettled) => {
      run1.push(...evs);
      if (settleNow) onSettled?.();
      else if (onSettled) pending.push(onSettled);
    };
    const c1 = createKernelLogCollector(makeCtx(dir), { path: file, pollMs: 10, cursor });
    await c1.start(emit1);
    await fsp.appendFile(file, xid(2) + xid(3));
    await until(() => run1.length === 2 && cursor.saved?.kind === 'file' && cursor.saved.offset > 100, 'pids 2, 3 delivered and the cursor saved');
    const afterThree = cursor.saved;
    settleNow = false;
    await fsp.appendFile(file, xid(4));
    await until(() => run1.length === 3, 'pid 4 read');
    await sleep(50);
    expect(cursor.saved, 'the cursor does not pass an unacknowledged event').to.deep.equal(afterThree);
    await c1.stop(); // "kill -9": pid 4 never settles
    await fsp.appendFile(file, xid(5)); // logged while no agent runs

    // Run 2, same cursor: pid 4 again (same id) and pid 5; not 2 or 3.
    const run2: EventEnvelope[] = [];
    const c2 = createKernelLogCollector(makeCtx(dir), { path: file, pollMs: 10, cursor });
    await c2.start((evs, onSettled) => {
      run2.push(...evs);
      onSettled?.();
    });
    await until(() => run2.length >= 2, 'pids 4 and 5 after the restart');
    await sleep(50);
    await c2.stop();
    expect(run2.map((e) => e.data['pid'])).to.deep.equal([4, 5]);
    expect(run2[0]?.id).to.equal(run1[2]?.id);
    expect(new Set([...run1, ...run2].map((e) => e.id)).size, 'one id per record').to.equal(4);
    const size = (await fsp.stat(file)).size;
    expect(cursor.saved).to.deep.include({ kind: 'file', offset: size });
    expect(pending).to.have.length(1);
  });

  it('without a cursor a restart tails from the end (what was logged while down is not read)', async () => {
    const c = createKernelLogCollector(makeCtx(dir), { path: file, pollMs: 10 });
    const got: EventEnvelope[] = [];
    await fsp.appendFile(file, xid(2));
    await c.start((evs) => got.push(...evs));
    await sleep(60);
    await c.stop();
    expect(got).to.deep.equal([]);
  });

  it('ignores a cursor of another file (rotated while down) and a cursor past the end', async () => {
    const st = await fsp.stat(file);
    for (const saved of [
      { kind: 'file', file: '1:1', offset: 10 },
      { kind: 'file', file: `${st.dev}:${st.ino}`, offset: 1 << 30 },
    ] as KernelLogCursor[]) {
      const cursor = memoryCursor();
      cursor.saved = saved;
      await fsp.appendFile(file, xid(9));
      const got: EventEnvelope[] = [];
      const c = createKernelLogCollector(makeCtx(dir), { path: file, pollMs: 10, cursor });
      await c.start((evs) => got.push(...evs));
      await sleep(50);
      await c.stop();
      expect(got, JSON.stringify(saved)).to.deep.equal([]);
    }
  });

  it('the file store: atomic JSON, a malformed or oversized file is reported and ignored', async () => {
    const bad: string[] = [];
    const store = fileCursorStore(path.join(dir, 'state', 'nested'), (why) => bad.push(why));
    expect(await store.load()).to.equal(undefined);
    expect(bad).to.deep.equal([]);
    await store.save({ kind: 'kmsg', boot: '0b8f6c1e-4f0a-4c2e-9d3a-1f2e3d4c5b6a', seq: 42 });
    expect(await store.load()).to.deep.equal({ kind: 'kmsg', boot: '0b8f6c1e-4f0a-4c2e-9d3a-1f2e3d4c5b6a', seq: 42 });
    const f = path.join(dir, 'state', 'nested', 'kernel-log.cursor');
    for (const text of ['{"kind":"kmsg","boot":"b","seq":-1}', 'not json', `{"kind":"file","file":"${'x'.repeat(100)}","offset":1}`, 'x'.repeat(10_000)]) {
      await fsp.writeFile(f, text);
      expect(await store.load(), text.slice(0, 40)).to.equal(undefined);
    }
    expect(bad).to.have.length(4);
  });

  it('event ids: same record → same id; another SEQ, stream, node or event index → another', () => {
    const r = { seq: 7, message: 'NVRM: Xid', format: 'kmsg' as const };
    const id = recordEventId('n1', 'boot-a', r, 0);
    expect(id).to.match(/^k[0-9a-f]{32}$/);
    expect(recordEventId('n1', 'boot-a', { ...r }, 0)).to.equal(id);
    for (const other of [recordEventId('n1', 'boot-a', { ...r, seq: 8 }, 0), recordEventId('n1', 'boot-b', r, 0), recordEventId('n2', 'boot-a', r, 0), recordEventId('n1', 'boot-a', r, 1)])
      expect(other).to.not.equal(id);
  });
});
