import { expect } from 'chai';
import { backoffDelay, exponentialDelay, fullJitterDelay, StartupRunner } from '../../../core/backoff.js';
import { silentLogger } from '../../../core/logger.js';

describe('backoff', () => {
  it('one formula: base doubling from attempt 1, capped; full jitter spans [0, that]', () => {
    const p = { baseMs: 1000, maxMs: 30_000 };
    expect([1, 2, 3, 5, 6, 0, 1e9].map((a) => exponentialDelay(a, p))).to.deep.equal([1000, 2000, 4000, 16_000, 30_000, 1000, 30_000]);
    expect(fullJitterDelay(3, p, () => 0)).to.equal(0);
    expect(fullJitterDelay(3, p, () => 1)).to.equal(4000);
    expect(fullJitterDelay(3, p, () => 0.5)).to.equal(2000);
  });


  it('grows exponentially, is capped, and jitters within [half, full]', () => {
    const p = { baseMs: 500, maxMs: 15_000 };
    expect(backoffDelay(1, p, () => 1)).to.equal(500);
    expect(backoffDelay(1, p, () => 0)).to.equal(250);
    expect(backoffDelay(4, p, () => 1)).to.equal(4000);
    expect(backoffDelay(50, p, () => 1)).to.equal(15_000);
    expect(backoffDelay(1e9, p, () => 0)).to.equal(7500);
  });

  it('keeps retrying a failing start-up step, reports it while it fails, then runs the next', async () => {
    const waits: number[] = [];
    const runner = new StartupRunner({ logger: silentLogger, sleep: (ms) => (waits.push(ms), Promise.resolve()) });
    let kafkaTries = 0;
    const seen: Array<string | null> = [];
    const ok = await runner.run([
      { name: 'redis', run: () => Promise.resolve() },
      {
        name: 'kafka',
        run: () => {
          seen.push(runner.status.failing?.step ?? null);
          return ++kafkaTries < 6 ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9092')) : Promise.resolve();
        },
      },
    ]);
    expect(ok).to.equal(true);
    expect(kafkaTries).to.equal(6);
    expect(waits).to.have.length(5);
    expect(waits.every((w) => w > 0 && w <= 15_000)).to.equal(true);
    expect(seen.slice(1)).to.deep.equal(['kafka', 'kafka', 'kafka', 'kafka', 'kafka']);
    expect(runner.status).to.deep.equal({ done: true, failing: null });
  });

  it('names the failing step and error, and stops waiting on shutdown', async () => {
    const runner = new StartupRunner({ logger: silentLogger, policy: { baseMs: 60_000, maxMs: 60_000 } });
    const done = runner.run([{ name: 'kafka', run: () => Promise.reject(new Error('broker down')) }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(runner.status.failing).to.include({ step: 'kafka', attempts: 1, error: 'broker down' });
    runner.stop();
    expect(await done).to.equal(false);
    expect(runner.status.done).to.equal(false);
  });
});
