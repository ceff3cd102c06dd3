/**
 * One bound on how long a promise may take: the remediator's actions and
 * ledger writes, and the agent's one-shot collection, all time out here.
 */
import { NodewardenError } from './errors.js';

export interface TimeoutOptions {
  /**
   * Let the process exit while only this timer is pending (a long-lived
   * service that has other handles). Off by default: a one-shot caller whose
   * promise holds no handle of its own still gets its timeout error.
   */
  unref?: boolean;
}

/** `p`, or a retriable `TIMEOUT` error ("<what> timed out after <ms> ms") once `ms` has passed; the timer is always cleared. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, opts: TimeoutOptions = {}): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NodewardenError('TIMEOUT', `${what} timed out after ${ms} ms`, { retriable: true })), ms);
    if (opts.unref) timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
