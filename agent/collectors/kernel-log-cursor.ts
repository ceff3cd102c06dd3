/**
 * The kernel-log resume position, kept in one small file under the agent's
 * state directory so a restarted agent (kill -9, OOM kill, upgrade) resumes
 * after the last record whose events Kafka acknowledged, instead of tailing
 * from the end and missing what was logged while it was down.
 *
 * - kmsg device: the boot id (`/proc/sys/kernel/random/boot_id`) and the last
 *   SEQ. Another boot id (or none) means the SEQs are not comparable: no resume.
 * - regular file: device + inode and the byte offset after the last complete
 *   line. Another inode (rotated while down) or a shorter file: no resume.
 *
 * Written atomically (temporary file + rename), read bounded (4 KiB), and a
 * file that does not parse is ignored with a warning: a bad cursor must never
 * keep the agent from reading the kernel log.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { readFileBounded } from './read-bounded.js';

export type KernelLogCursor = { kind: 'kmsg'; boot: string; seq: number } | { kind: 'file'; file: string; offset: number };

const MAX_CURSOR_BYTES = 4096;

export interface CursorStore {
  load(): Promise<KernelLogCursor | undefined>;
  save(c: KernelLogCursor): Promise<void>;
}

function isCursor(v: unknown): v is KernelLogCursor {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (o['kind'] === 'kmsg') return typeof o['boot'] === 'string' && o['boot'].length <= 64 && Number.isSafeInteger(o['seq']) && (o['seq'] as number) >= 0;
  if (o['kind'] === 'file') return typeof o['file'] === 'string' && o['file'].length <= 64 && Number.isSafeInteger(o['offset']) && (o['offset'] as number) >= 0;
  return false;
}

/** A cursor file in `dir` (created if missing). `onBadFile` hears about an unreadable or malformed file. */
export function fileCursorStore(dir: string, onBadFile: (why: string) => void): CursorStore {
  const file = path.join(dir, 'kernel-log.cursor');
  const tmp = `${file}.tmp`;
  let dirReady = false;
  return {
    async load() {
      let text: string;
      try {
        text = (await readFileBounded(file, MAX_CURSOR_BYTES)).text;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onBadFile(`cannot read ${file}: ${(err as Error).message}`);
        return undefined;
      }
      try {
        const v: unknown = JSON.parse(text);
        if (isCursor(v)) return v;
      } catch {
        // reported below
      }
      onBadFile(`${file} is not a kernel-log cursor; ignored`);
      return undefined;
    },
    async save(c) {
      if (!dirReady) {
        await fsp.mkdir(dir, { recursive: true });
        dirReady = true;
      }
      await fsp.writeFile(tmp, JSON.stringify(c));
      await fsp.rename(tmp, file);
    },
  };
}
