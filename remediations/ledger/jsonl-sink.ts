/** The ledger as one JSON object per line to a stream (stdout in replay), honouring back-pressure. Append-only. */
import type { Writable } from 'node:stream';
import type { LedgerEntry } from './entry.js';
import type { LedgerWriter } from './store.js';

export class JsonlLedgerSink implements LedgerWriter {
  readonly name = 'jsonl';
  constructor(private readonly out: Writable | NodeJS.WritableStream) {}

  async append(entries: readonly LedgerEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const text = entries.map((r) => JSON.stringify(r)).join('\n') + '\n';
    if (!this.out.write(text)) await new Promise<void>((resolve) => this.out.once('drain', () => resolve()));
  }
}
