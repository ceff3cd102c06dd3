/**
 * Runs async jobs one at a time. The rule engine is not re-entrant: a tick
 * and a batch must not interleave their store updates.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
