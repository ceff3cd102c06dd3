/**
 * `gpu.xid` (and `net.conntrack` with `tableFull: true`) from the kernel log.
 *
 * The source is `<hostRoot>/dev/kmsg` by default, or any file of kmsg
 * records, dmesg lines or kern.log/journal lines (format detected per line).
 *
 * Live tailing starts FROM THE END, two ways:
 * - Character device (/dev/kmsg): opened O_NONBLOCK. On start every record
 *   already in the ring buffer is drained (what `lseek(fd, 0, SEEK_END)` would
 *   do; node has no lseek) and fed to the Xid parser only to learn PCI → UUID
 *   from boot-time `NVRM: GPU at PCI:…` lines, its events discarded. After
 *   that the device is drained every `pollMs` until EAGAIN. Non-blocking reads
 *   never park a libuv pool thread in a read that may never return; spawning
 *   `dmesg -w` was ruled out (no tools on the image, and one more process).
 *   EPIPE (the ring buffer overwrote records we had not read) is logged,
 *   counted in `nodewarden_agent_kmsg_overruns_total`, and reading goes on
 *   from the oldest record still there. Records whose SEQ is not above the
 *   last one seen are skipped (after a reopen the device starts over).
 * - Regular file: the last MiB primes the UUID map; afterwards size and inode
 *   are polled every `pollMs`: a new inode (rotation) drains the old file and
 *   reopens the new one from the start; a smaller size (truncation) reopens
 *   from the start.
 *
 * Trust: syslog/journal lines tagged by a user-space program (`systemd[1]:`)
 * are ignored; kmsg records written by user space (facility 1) are accepted,
 * since /dev/kmsg is root-writable only and fault injectors use it.
 *
 * Nothing here throws into the agent: read errors are logged, counted and
 * retried at the next poll.
 */
import { MAX_LINE_CHARS, ONCE_MAX_BYTES, ONCE_MAX_MS, POLL_MAX_BYTES, readFileBounded } from '../bounds.js';
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Counter } from 'prom-client';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { ConntrackData, EventEnvelope, GpuXidData } from '../../core/envelope.js';
import { errorMessage } from '../../core/errors.js';
import type { Registry } from '../../core/metrics.js';
import type { KernelLogRecord } from '../parsers/kernel-log.js';
import { KernelLogParser } from '../parsers/kernel-log.js';
import { parseConntrackTableFull } from '../parsers/conntrack.js';
import { XidParser } from '../parsers/xid.js';

export interface KernelLogCollectorOptions {
  /** Default `<hostRoot>/dev/kmsg`. */
  path?: string;
  /** How often live mode looks for new records. */
  pollMs: number;
  /** "table full" lines within this much time fold into one event (default 10 s). */
  tableFullCoalesceMs?: number;
}

/** Bytes of an existing regular file read at start to learn PCI → UUID. */
const PRIME_BYTES = 1 << 20;
const READ_CHUNK = 1 << 20;
/** kmsg returns one record per read(); records are at most ~8 KiB (CONSOLE_EXT_LOG_MAX). */
const KMSG_RECORD_BUF = 16 * 1024;
/** A drain never takes more records than this per poll, so one poll stays short. */
const KMSG_MAX_PER_DRAIN = 20_000;

/** The table-full data: ConntrackData plus which module said it and how many lines were folded in. */
export interface ConntrackTableFullData extends ConntrackData {
  tableFull: true;
  module: string;
  message: string;
  /** "table full" lines folded (not reported) since the previous table-full event. */
  suppressed: number;
}

function counter(registry: Registry, name: string, help: string, labelNames: string[] = []): Counter<string> {
  return (registry.getSingleMetric(name) as Counter<string> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** The one FileHandle method the kmsg reader needs (a fake in tests). */
export type KmsgReadable = Pick<FileHandle, 'read'>;

/**
 * Reads every record currently in a kmsg device opened O_NONBLOCK, one
 * record per read(), until EAGAIN. EPIPE (records overwritten before we read
 * them) is reported to `onOverrun` and reading goes on from the oldest
 * record still there. Records whose SEQ is not above `state.lastSeq` are
 * skipped (a reopened device starts over). Stops after
 * {@link KMSG_MAX_PER_DRAIN} records (`eof: false`) to keep one poll short.
 */
export async function readKmsgRecords(
  fh: KmsgReadable,
  state: { lastSeq: number },
  onOverrun: (err: unknown) => void,
  maxBytes = POLL_MAX_BYTES,
): Promise<{ text: string; eof: boolean }> {
  const buf = Buffer.allocUnsafe(KMSG_RECORD_BUF);
  const parts: string[] = [];
  let total = 0;
  for (let n = 0; n < KMSG_MAX_PER_DRAIN && total < maxBytes; n += 1) {
    let bytes: number;
    try {
      ({ bytesRead: bytes } = await fh.read(buf, 0, buf.length, null));
    } catch (err) {
      const code = errCode(err);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return { text: parts.join(''), eof: true };
      if (code === 'EPIPE') {
        onOverrun(err);
        continue;
      }
      throw err;
    }
    if (bytes === 0) return { text: parts.join(''), eof: true };
    total += bytes;
    const rec = buf.toString('utf8', 0, bytes);
    const seq = Number(/^\d+,(\d+),/.exec(rec)?.[1] ?? NaN);
    if (Number.isFinite(seq)) {
      if (seq <= state.lastSeq) continue;
      state.lastSeq = seq;
    }
    parts.push(rec.endsWith('\n') ? rec : `${rec}\n`);
  }
  return { text: parts.join(''), eof: false };
}

export function createKernelLogCollector(ctx: CollectorContext, opts: KernelLogCollectorOptions): Collector {
  const file = opts.path ?? path.join(ctx.hostRoot, 'dev', 'kmsg');
  const coalesceMs = opts.tableFullCoalesceMs ?? 10_000;
  const log = ctx.logger.child({ collector: 'kernel-log', path: file });
  const overruns = counter(ctx.registry, 'nodewarden_agent_kmsg_overruns_total', 'EPIPE from /dev/kmsg: records overwritten before they were read');
  const records = counter(ctx.registry, 'nodewarden_agent_kernel_log_records_total', 'Kernel log records parsed');
  const reopens = counter(ctx.registry, 'nodewarden_agent_kernel_log_reopens_total', 'Kernel log file reopened', ['reason']);
  const readErrors = counter(ctx.registry, 'nodewarden_agent_kernel_log_read_errors_total', 'Kernel log read errors');

  /** Parsing state for one pass (once) or one live session. */
  class Pipeline {
    readonly parser = new KernelLogParser({ nowMs: () => ctx.clock.now() });
    readonly xid = new XidParser();
    bootMs: number | undefined;
    /** "table full" lines come in floods (net_ratelimit): one event per window, the rest counted. */
    private lastFullAt: number | undefined;
    private foldedFull = 0;

    /** Parses text; returns the events (or, with `prime`, only learns state). */
    process(text: string, prime = false): EventEnvelope[] {
      const out: EventEnvelope[] = [];
      const recs = this.parser.parse(text);
      records.inc(recs.length);
      for (const r of recs) {
        // A syslog/journal line from a user-space program is not the kernel speaking.
        if (r.tag !== undefined && r.tag !== 'kernel') continue;
        const xids = this.xid.feed(r);
        if (prime) continue;
        for (const x of xids) out.push(ctx.newEvent<GpuXidData>('gpu.xid', sourceOf(r), x, this.observedAt(r)));
        const full = parseConntrackTableFull(r.message);
        if (full) {
          const at = this.observedAt(r) ?? ctx.clock.now();
          if (this.lastFullAt !== undefined && at - this.lastFullAt >= 0 && at - this.lastFullAt < coalesceMs) {
            this.foldedFull += 1;
            continue;
          }
          const data: ConntrackTableFullData = {
            count: null,
            max: null,
            counters: {},
            tableFull: true,
            module: full.module,
            message: r.message,
            suppressed: this.foldedFull,
          };
          this.lastFullAt = at;
          this.foldedFull = 0;
          out.push(ctx.newEvent<ConntrackTableFullData>('net.conntrack', sourceOf(r), data, this.observedAt(r)));
        }
      }
      return out;
    }

    /** Wall-clock ms of a record, when it can be known; undefined means "now". */
    observedAt(r: KernelLogRecord): number | undefined {
      let t: number | undefined;
      if (r.clock === 'wall') t = r.tsMs;
      else if (r.clock === 'monotonic' && r.tsMs !== undefined && this.bootMs !== undefined) t = this.bootMs + r.tsMs;
      if (t === undefined) return undefined;
      const now = ctx.clock.now();
      // A stamp in the future, or from a wrongly-guessed year (year-less syslog) or a
      // stale boot time, is worse than "now". Stamps that carry their year (dmesg -T,
      // RFC 3339) are kept however old: `--once` over an old log feeds replay.
      const guessed = r.format === 'syslog' || r.clock === 'monotonic';
      if (t > now + 60_000 || (guessed && t < now - 400 * 86_400_000)) return undefined;
      return Math.round(t);
    }
  }

  async function readBootMs(): Promise<number | undefined> {
    try {
      const up = (await readFileBounded(path.join(ctx.hostRoot, 'proc', 'uptime'), 4096)).text;
      const secs = Number(up.trim().split(/\s+/)[0]);
      return Number.isFinite(secs) ? ctx.clock.now() - secs * 1000 : undefined;
    } catch {
      return undefined;
    }
  }

  const drainKmsg = (fh: KmsgReadable, state: { lastSeq: number }, maxBytes?: number) =>
    readKmsgRecords(
      fh,
      state,
      (err) => {
        overruns.inc();
        log.warn({ err: errorMessage(err) }, 'kmsg ring buffer overrun: some kernel records were lost; reading on');
      },
      maxBytes,
    );

  async function readAll(fh: FileHandle, from: number, to: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let pos = from;
    while (pos < to) {
      const len = Math.min(READ_CHUNK, to - pos);
      const b = Buffer.allocUnsafe(len);
      const { bytesRead } = await fh.read(b, 0, len, pos);
      if (bytesRead === 0) break;
      chunks.push(b.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return Buffer.concat(chunks);
  }

  // ---- live state ----
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inflight: Promise<void> | undefined;
  let fh: FileHandle | undefined;
  let mode: 'device' | 'file' | undefined;
  /** The source was opened once already: later opens resume (or restart after rotation), never re-prime. */
  let opened = false;
  let ino = 0;
  let offset = 0;
  let partial = '';
  const kstate = { lastSeq: -1 };
  let pipe: Pipeline | undefined;
  let emitFn: Emit | undefined;
  let missingWarned = false;

  function emitEvents(events: EventEnvelope[]): void {
    if (events.length > 0 && emitFn) emitFn(events);
  }

  /** Splits off complete lines; keeps the unterminated tail for the next read. */
  function completeLines(text: string): string {
    const all = partial + text;
    const cut = all.lastIndexOf('\n');
    if (cut < 0) {
      // A line that never ends is kept only up to MAX_LINE_CHARS (the parser truncates fields further).
      partial = all.length > MAX_LINE_CHARS ? all.slice(0, MAX_LINE_CHARS) : all;
      return '';
    }
    partial = all.slice(cut + 1, cut + 1 + MAX_LINE_CHARS);
    return all.slice(0, cut + 1);
  }

  async function closeHandle(): Promise<void> {
    const h = fh;
    fh = undefined;
    mode = undefined;
    if (h) await h.close().catch(() => undefined);
  }

  /**
   * Opens the source. First open: tail from the end (after priming). Later
   * opens: a kmsg device resumes after the last SEQ; a file resumes at the
   * offset if it is the same inode and not shorter, else starts over (it was
   * rotated or truncated meanwhile).
   */
  async function open(): Promise<boolean> {
    if (!pipe) return false;
    let st;
    try {
      st = await fsp.stat(file);
    } catch (err) {
      if (!missingWarned) {
        log.warn({ err: errorMessage(err) }, 'kernel log not readable; will keep looking');
        missingWarned = true;
      }
      return false;
    }
    missingWarned = false;
    if (st.isCharacterDevice()) {
      fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
      mode = 'device';
      const first = !opened;
      opened = true;
      const { text } = await drainKmsg(fh, kstate);
      // First open: the backlog only teaches the UUID map. Reopen: records after lastSeq are new.
      if (first) pipe.process(text, true);
      else emitEvents(pipe.process(text));
      return true;
    }
    fh = await fsp.open(file, 'r');
    mode = 'file';
    if (!opened) {
      const from = Math.max(0, st.size - PRIME_BYTES);
      const head = (await readAll(fh, from, st.size)).toString('utf8');
      const text = from > 0 ? head.slice(head.indexOf('\n') + 1) : head;
      pipe.process(text.slice(0, text.lastIndexOf('\n') + 1), true);
      offset = st.size;
      partial = '';
    } else if (st.ino !== ino || st.size < offset) {
      offset = 0;
      partial = '';
    }
    opened = true;
    ino = st.ino;
    return true;
  }

  async function pollFile(): Promise<void> {
    if (!fh || !pipe) return;
    let st;
    try {
      st = await fsp.stat(file);
    } catch {
      return; // between rotate and create: the old handle may still grow
    }
    if (st.ino !== ino) {
      // Rotated: finish the old file through the handle we hold, then start the new one from 0.
      const old = await fh.stat();
      if (old.size > offset) emitEvents(pipe.process(completeLines((await readAll(fh, offset, Math.min(old.size, offset + POLL_MAX_BYTES))).toString('utf8'))));
      if (partial.length > 0) emitEvents(pipe.process(`${partial}\n`));
      reopens.inc({ reason: 'rotation' });
      log.info({}, 'kernel log rotated; reading the new file from the start');
      await closeHandle();
      if (await open()) await pollFile();
      return;
    }
    if (st.size < offset) {
      reopens.inc({ reason: 'truncation' });
      log.info({ size: st.size, offset }, 'kernel log truncated; reading from the start');
      offset = 0;
      partial = '';
    }
    if (st.size > offset) {
      // A file that grew by a GiB is read POLL_MAX_BYTES at a time, one slice per poll.
      const b = await readAll(fh, offset, Math.min(st.size, offset + POLL_MAX_BYTES));
      offset += b.length;
      emitEvents(pipe.process(completeLines(b.toString('utf8'))));
    }
  }

  async function tick(): Promise<void> {
    try {
      if (!fh) {
        if (!(await open())) return;
      }
      if (mode === 'device' && fh && pipe) {
        const { text } = await drainKmsg(fh, kstate);
        if (text.length > 0) emitEvents(pipe.process(text));
      } else if (mode === 'file') {
        await pollFile();
      }
    } catch (err) {
      readErrors.inc();
      log.warn({ err: errorMessage(err) }, 'kernel log read failed; reopening at the next poll');
      reopens.inc({ reason: 'error' });
      await closeHandle();
    }
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      inflight = tick().finally(() => {
        inflight = undefined;
        schedule();
      });
    }, opts.pollMs);
    timer.unref();
  }

  return {
    name: 'kernel-log',

    async start(emit: Emit): Promise<void> {
      if (running) return;
      running = true;
      emitFn = emit;
      pipe = new Pipeline();
      pipe.bootMs = await readBootMs();
      try {
        await open();
      } catch (err) {
        readErrors.inc();
        log.warn({ err: errorMessage(err) }, 'kernel log open failed; retrying at the next poll');
        await closeHandle();
      }
      schedule();
    },

    async stop(): Promise<void> {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (inflight) await inflight.catch(() => undefined);
      await closeHandle();
      emitFn = undefined;
    },

    async collectOnce(): Promise<CollectResult> {
      let st;
      try {
        st = await fsp.stat(file);
      } catch (err) {
        return { events: [], skipped: `no kernel log at ${file} (${errCode(err) ?? errorMessage(err)})` };
      }
      const p = new Pipeline();
      p.bootMs = await readBootMs();
      let text: string;
      try {
        if (st.isCharacterDevice()) {
          const h = await fsp.open(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
          try {
            // A device that keeps returning data (a wrong mount, /dev/zero) must not keep --once alive:
            // stop after ONCE_MAX_BYTES or ONCE_MAX_MS, whichever comes first.
            const parts: string[] = [];
            const s = { lastSeq: -1 };
            const deadline = ctx.clock.now() + ONCE_MAX_MS;
            let bytes = 0;
            for (;;) {
              const r = await drainKmsg(h, s, Math.min(POLL_MAX_BYTES, ONCE_MAX_BYTES - bytes));
              parts.push(r.text);
              bytes += Buffer.byteLength(r.text);
              if (r.eof) break;
              if (bytes >= ONCE_MAX_BYTES || ctx.clock.now() >= deadline) {
                log.warn({ bytes, limitBytes: ONCE_MAX_BYTES, limitMs: ONCE_MAX_MS }, 'kernel log device keeps returning data: --once stops here');
                break;
              }
            }
            text = parts.join('');
          } finally {
            await h.close();
          }
        } else {
          const r = await readFileBounded(file, ONCE_MAX_BYTES);
          if (r.truncated) log.warn({ limitBytes: ONCE_MAX_BYTES }, 'kernel log larger than the --once limit: only its start is read');
          text = r.text.slice(0, r.truncated ? r.text.lastIndexOf('\n') + 1 : undefined);
        }
      } catch (err) {
        readErrors.inc();
        return { events: [], skipped: `kernel log ${file} not readable (${errorMessage(err)})` };
      }
      if (text.trim().length === 0) return { events: [], skipped: `kernel log ${file} is empty` };
      return { events: p.process(text) };
    },
  };
}

function sourceOf(r: KernelLogRecord): string {
  switch (r.format) {
    case 'kmsg':
      return 'kmsg';
    case 'dmesg':
    case 'dmesg-T':
    case 'dmesg-iso':
      return 'dmesg';
    case 'syslog':
    case 'rfc3339':
    case 'rfc5424':
      return 'syslog';
    default:
      return 'kernel-log';
  }
}
