/** A pager that only records (replay, demo, tests): no HTTP. */
import type { PageRequest, Pager } from './pager.js';

export interface RecordingPager extends Pager {
  readonly sent: PageRequest[];
}

export function createRecordingPager(name = 'recording'): RecordingPager {
  const sent: PageRequest[] = [];
  return {
    name,
    sent,
    send(req: PageRequest): Promise<void> {
      sent.push(structuredClone(req));
      return Promise.resolve();
    },
  };
}
