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
 * Resume after a restart (`cursor`, agent.stateDir): the position after the
 * last record whose events Kafka acknowledged (or that had none) is saved;
 * a restarted agent primes on what came before it and emits what came after,
 * so Xids logged while it was down are reported (kernel-log-cursor.ts). Event
 * ids are derived from the record (boot id + SEQ on a device, device:inode +
 * stamp + text in a file), so a record read again after a kill is the same
 * event and the engine's dedupe-by-id drops it: at-least-once on the wire,
 * exactly once downstream. Without a boot id ids stay random (SEQs restart
 * at every boot and would collide).
 *
 * Trust: syslog/journal lines tagged by a user-space program (`systemd[1]:`)
 * are ignored; kmsg records written by user space (facility 1) are accepted,
 * since /dev/kmsg is root-writable only and fault injectors use it.
 *
 * Nothing here throws into the agent: read errors are logged, counted and
 * retried at the next poll.
 */
import { MAX_LINE_CHARS, ONCE_MAX_BYTES, ONCE_MAX_MS, POLL_MAX_BYTES } from '../bounds.js';
import { readFileBounded } from './read-bounded.js';
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Counter } from '../metrics.js';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { ConntrackData, EventEnvelope, GpuXidData } from '../../core/envelope.js';
import { errorMessage } from '../../core/errors.js';
import type { Registry } from '../metrics.js';
import type { KernelLogRecord } from '../parsers/kernel-log.js';
import { KernelLogParser } from '../parsers/kernel-log.js';
import { parseConntrackTableFull } from '../parsers/conntrack.js';
import { XidParser } from '../parsers/xid.js';
import type { CursorStore, KernelLogCursor } from './kernel-log-cursor.js';

export interface KernelLogCollectorOptions {
  /** Default `<hostRoot>/dev/kmsg`. */
  path?: string;
  /** How often live mode looks for new records. */
  pollMs: number;
  /** "table full" lines within this much time fold into one event (default 10 s). */
  tableFullCoalesceMs?: number;
  /** Keeps the resume position across restarts (agent.stateDir); none = tail from the end. */
  cursor?: CursorStore;
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

/** A resume position and how many emitted batches before it have not settled yet. */
interface Checkpoint {
  outstanding: number;
  pos?: KernelLogCursor;
}

/**
 * The id of the k-th event from one record: the same record read again (after
 * a restart) gives the same id. 32 hex chars of SHA-256 after a `k` prefix.
 */
export function recordEventId(node: string, stream: string, r: KernelLogRecord, k: number): string {
  const rec = r.seq !== undefined ? `s${r.seq}` : `t${r.tsMs ?? ''}|${r.format}|${r.message}`;
  return `k${createHash('sha256').update(`${node}\n${stream}\n${rec}\n${k}`).digest('hex').slice(0, 32)}`;
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
    /** Identity of the stream being read (boot id, device:inode); undefined = random event ids. */
    stream: string | undefined;
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
        let k = 0;
        const ided = (e: EventEnvelope): EventEnvelope => {
          if (this.stream !== undefined) e.id = recordEventId(ctx.node, this.stream, r, k);
          k += 1;
          return e;
        };
        for (const x of xids) out.push(ided(ctx.newEvent<GpuXidData>('gpu.xid', sourceOf(r), x, this.observedAt(r))));
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
          out.push(ided(ctx.newEvent<ConntrackTableFullData>('net.conntrack', sourceOf(r), data, this.observedAt(r))));
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

  async function readBootId(): Promise<string | undefined> {
    try {
      const id = (await readFileBounded(path.join(ctx.hostRoot, 'proc', 'sys', 'kernel', 'random', 'boot_id'), 256)).text.trim();
      return /^[0-9a-f-]{8,64}$/i.test(id) ? id : undefined;
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
  /** Bytes of the unterminated tail before it was cut to MAX_LINE_CHARS: the resume offset is `offset - partialBytes`. */
  let partialBytes = 0;
  const kstate = { lastSeq: -1 };
  let bootId: string | undefined;
  let fileId = '';
  /** The cursor saved by the previous run, used at the first open only. */
  let resume: KernelLogCursor | undefined;
  /**
   * Resume positions waiting for their events to settle (delivered or dropped), oldest first.
   * Each holds at least one unsettled event, so there are never more than the publisher's
   * spool holds; a poll that emitted nothing moves the newest one on instead of adding one.
   */
  const checkpoints: Checkpoint[] = [];
  /** Events of the current poll, before its position is known. */
  let current: Checkpoint = { outstanding: 0 };
  let savedPos: string | undefined;
  let wantPos: KernelLogCursor | undefined;
  let saving: Promise<void> | undefined;
  let pipe: Pipeline | undefined;
  let emitFn: Emit | undefined;
  let missingWarned = false;

  function emitEvents(events: EventEnvelope[]): void {
    if (events.length === 0 || !emitFn) return;
    if (!opts.cursor) return emitFn(events);
    const cp = current;
    cp.outstanding += 1;
    emitFn(events, () => {
      cp.outstanding -= 1;
      advance();
    });
  }

  /** The position after everything read so far, or undefined when it cannot be resumed from. */
  function position(): KernelLogCursor | undefined {
    if (mode === 'device') return bootId !== undefined && kstate.lastSeq >= 0 ? { kind: 'kmsg', boot: bootId, seq: kstate.lastSeq } : undefined;
    if (mode === 'file') return { kind: 'file', file: fileId, offset: Math.max(0, offset - partialBytes) };
    return undefined;
  }

  /** Ends a read: its events (if any) settle before the cursor may pass its position. */
  function mark(): void {
    if (!opts.cursor) return;
    const pos = position();
    const cp = current;
    current = { outstanding: 0 };
    if (!pos) return;
    if (cp.outstanding > 0) {
      cp.pos = pos;
      checkpoints.push(cp);
    } else {
      const tail = checkpoints[checkpoints.length - 1];
      if (tail) tail.pos = pos;
      else wantPos = pos;
    }
    advance();
  }

  /** Moves the saved cursor to the newest position whose events (and all before) settled. */
  function advance(): void {
    for (let head = checkpoints[0]; head && head.outstanding <= 0; head = checkpoints[0]) {
      checkpoints.shift();
      wantPos = head.pos;
    }
    if (!wantPos || saving) return;
    const pos = wantPos;
    const key = JSON.stringify(pos);
    if (key === savedPos) return;
    saving = (opts.cursor as CursorStore)
      .save(pos)
      .then(
        () => {
          savedPos = key;
        },
        (err: unknown) => {
          readErrors.inc();
          log.warn({ err: errorMessage(err) }, 'cannot save the kernel-log cursor; a restart may read some records again');
        },
      )
      .finally(() => {
        saving = undefined;
        if (wantPos && JSON.stringify(wantPos) !== key) advance();
      });
  }

  /** Splits off complete lines; keeps the unterminated tail for the next read. */
  function completeLines(text: string): string {
    const all = partial + text;
    const cut = all.lastIndexOf('\n');
    if (cut < 0) {
      // A line that never ends is kept only up to MAX_LINE_CHARS (the parser truncates fields further).
      partialBytes += Buffer.byteLength(text);
      partial = all.length > MAX_LINE_CHARS ? all.slice(0, MAX_LINE_CHARS) : all;
      return '';
    }
    partialBytes = Buffer.byteLength(all.slice(cut + 1));
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
      pipe.stream = bootId;
      const { text } = await drainKmsg(fh, kstate);
      // First open: the backlog only teaches the UUID map, unless a saved cursor of this boot says
      // where the last run stopped. Reopen: records after lastSeq are new.
      const r = first && resume?.kind === 'kmsg' && resume.boot === bootId && resume.seq <= kstate.lastSeq ? resume : undefined;
      if (r) {
        const { before, after, firstAfter } = splitKmsgAt(text, r.seq);
        pipe.process(before, true);
        if (firstAfter !== undefined && firstAfter > r.seq + 1) log.warn({ lost: firstAfter - r.seq - 1 }, 'kmsg records overwritten while the agent was down');
        log.info({ seq: r.seq }, 'kernel log: resuming after the saved cursor');
        emitEvents(pipe.process(after));
      } else if (first) pipe.process(text, true);
      else emitEvents(pipe.process(text));
      return true;
    }
    fh = await fsp.open(file, 'r');
    mode = 'file';
    fileId = `${st.dev}:${st.ino}`;
    pipe.stream = fileId;
    if (!opened) {
      // A saved cursor of this very file (same inode, not shorter): resume there; else tail from the end.
      const r = resume?.kind === 'file' && resume.file === fileId && resume.offset <= st.size ? resume.offset : undefined;
      if (r !== undefined) log.info({ offset: r, size: st.size }, 'kernel log: resuming after the saved cursor');
      const end = r ?? st.size;
      const from = Math.max(0, end - PRIME_BYTES);
      const head = (await readAll(fh, from, end)).toString('utf8');
      const text = from > 0 ? head.slice(head.indexOf('\n') + 1) : head;
      pipe.process(text.slice(0, text.lastIndexOf('\n') + 1), true);
      offset = end;
      partial = '';
      partialBytes = 0;
    } else if (st.ino !== ino || st.size < offset) {
      offset = 0;
      partial = '';
      partialBytes = 0;
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
      partialBytes = 0;
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
      mark();
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
      bootId = await readBootId();
      resume = await opts.cursor?.load();
      try {
        await open();
        mark();
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
      p.stream = st.isCharacterDevice() ? await readBootId() : `${st.dev}:${st.ino}`;
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

/** Splits drained kmsg text at a SEQ: records up to it, records after it, and the first SEQ after it. */
function splitKmsgAt(text: string, seq: number): { before: string; after: string; firstAfter: number | undefined } {
  const lines = text.split('\n');
  let cut = lines.length;
  let firstAfter: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const m = /^\d+,(\d+),/.exec(lines[i] as string);
    if (m && Number(m[1]) > seq) {
      cut = i;
      firstAfter = Number(m[1]);
      break;
    }
  }
  const before = lines.slice(0, cut).join('\n');
  return { before: before.length > 0 ? `${before}\n` : '', after: lines.slice(cut).join('\n'), firstAfter };
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
