import { expect } from 'chai';
import { NodewardenError } from '../../../core/errors.js';
import { withTimeout } from '../../../core/timeout.js';

describe('withTimeout (core/timeout)', () => {
  it('passes a result that arrives in time through', async () => {
    expect(await withTimeout(Promise.resolve(7), 1000, 'quick')).to.equal(7);
  });

  it('rejects a late promise with a retriable TIMEOUT naming what and how long', async () => {
    const never = new Promise<number>(() => undefined);
    const err: unknown = await withTimeout(never, 20, 'cordon of node/a', { unref: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(NodewardenError);
    expect((err as NodewardenError).code).to.equal('TIMEOUT');
    expect((err as NodewardenError).retriable).to.equal(true);
    expect((err as Error).message).to.equal('cordon of node/a timed out after 20 ms');
  });

  it('passes the original rejection through', async () => {
    const err: unknown = await withTimeout(Promise.reject(new Error('boom')), 1000, 'x').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.equal('boom');
  });
});
