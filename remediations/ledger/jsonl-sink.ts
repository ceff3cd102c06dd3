/** One JSON object per line to a stream (stdout in replay), honouring back-pressure. */
import type { Writable } from 'node:stream';
import type { LedgerRecord } from '../../core/decision.js';
import type { LedgerSink } from './sink.js';

export class JsonlLedgerSink implements LedgerSink {
  readonly name = 'jsonl';
  constructor(private readonly out: Writable | NodeJS.WritableStream) {}

  async write(records: readonly LedgerRecord[]): Promise<void> {
    if (records.length === 0) return;
    const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    if (!this.out.write(text)) await new Promise<void>((resolve) => this.out.once('drain', () => resolve()));
  }
}
