import { expect } from 'chai';
import { periodicCollector } from '../../../agent/collectors/periodic.js';
import type { EventEnvelope } from '../../../core/envelope.js';

/** A round that blocks until released, so the test controls exactly when it ends. */
function gatedRound(): { round: (emit: (evs: EventEnvelope[]) => void) => Promise<void>; release: () => void; started: () => number } {
  let rounds = 0;
  let release: () => void = () => undefined;
  return {
    round: async (emit) => {
      rounds++;
      if (rounds === 1) {
        emit([{ id: 'first' } as EventEnvelope]);
        return;
      }
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      emit([{ id: `late-${rounds}` } as EventEnvelope]);
    },
    release: () => release(),
    started: () => rounds,
  };
}

describe('periodic collector loop', () => {
  it('stop() waits for a round in flight, and that round emits nothing after stop', async () => {
    const g = gatedRound();
    const got: string[] = [];
    const c = periodicCollector('t', 5, g.round, () => Promise.resolve({ events: [] }));
    await c.start((evs) => got.push(...evs.map((e) => e.id)));
    expect(got).to.deep.equal(['first']);
    // wait until the second round is in flight (blocked)
    const deadline = Date.now() + 5000;
    while (g.started() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(g.started()).to.equal(2);

    let stopped = false;
    const stopping = c.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped, 'stop resolved while a round was still running').to.equal(false);
    g.release();
    await stopping;
    expect(got, 'a round in flight at stop emitted after stop').to.deep.equal(['first']);
    await new Promise((r) => setTimeout(r, 30));
    expect(g.started(), 'no round after stop').to.equal(2);
  });
});
