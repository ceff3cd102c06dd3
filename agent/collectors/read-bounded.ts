/**
 * The agent's one bounded file read (/proc counters, kernel-log files, the
 * resume cursor): at most `maxBytes`, however big the file claims or turns
 * out to be. The limits themselves are pure, in agent/bounds.ts.
 */
import { promises as fsp } from 'node:fs';
import { SMALL_FILE_MAX_BYTES } from '../bounds.js';

/** Reads at most `maxBytes` of a file from its start (a /proc file, or a hostile giant). */
export async function readFileBounded(file: string, maxBytes = SMALL_FILE_MAX_BYTES): Promise<{ text: string; truncated: boolean }> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(maxBytes, 64 * 1024));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(buf.length, maxBytes + 1 - total);
      if (want <= 0) break;
      const { bytesRead } = await fh.read(buf, 0, want, null);
      if (bytesRead === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
      total += bytesRead;
    }
    const all = Buffer.concat(chunks);
    return { text: all.subarray(0, maxBytes).toString('utf8'), truncated: all.length > maxBytes };
  } finally {
    await fh.close();
  }
}
