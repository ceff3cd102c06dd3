/**
 * Normalizes kernel-log text into records, whatever shape it came in:
 *
 * - `/dev/kmsg` records `PRI,SEQ,TS_USEC,FLAGS[,more];message` (+ ` KEY=value`
 *   dictionary lines, which are dropped), see Documentation/ABI/testing/dev-kmsg;
 * - plain `dmesg` lines `[ 1234.567890] msg` and `dmesg -T` lines
 *   `[Thu Nov 21 10:15:23 2024] msg`;
 * - kern.log / syslog / `journalctl -k` short lines
 *   `Nov 21 10:15:23 host kernel: [1234.5678] msg` (also `.123456` precise),
 *   and RFC 3339 prefixes `2024-11-21T10:15:23.123456+00:00 host kernel: msg`
 *   (also journalctl short-iso `+0000`);
 * - anything else is kept as a raw message.
 *
 * The format is detected per line, so a file may mix them. Pure: no I/O, no
 * clock (the current time is passed in for year inference only).
 *
 * Times without a zone (syslog, `dmesg -T`) are read as UTC: nodes and
 * containers log in UTC in practice, and a wrong zone only shifts `ts`.
 */

export type KernelLogFormat = 'kmsg' | 'dmesg' | 'dmesg-T' | 'syslog' | 'rfc3339' | 'raw';

export interface KernelLogRecord {
  /** kmsg sequence number, when the source is /dev/kmsg. */
  seq?: number;
  /**
   * Milliseconds: monotonic since boot (`clock: 'monotonic'`, kmsg and plain
   * dmesg) or the Unix epoch (`clock: 'wall'`, syslog/journal/`dmesg -T`).
   */
  tsMs?: number;
  clock?: 'monotonic' | 'wall';
  /** Monotonic ms when a wall-clock line also carries the kernel's `[1234.5678]` stamp. */
  monoMs?: number;
  /** The message text, prefix stripped. One line: embedded newlines become separate records. */
  message: string;
  format: KernelLogFormat;
  /** kmsg syslog facility (0 = kernel, 1 = user space writing to /dev/kmsg) and level. */
  facility?: number;
  level?: number;
  /** Syslog tag (`kernel`, `systemd`), when the line has one. */
  tag?: string;
  host?: string;
}

export interface KernelLogParseOptions {
  /**
   * Epoch ms used to pick the year of year-less syslog stamps (the year that
   * puts the stamp at most a day ahead of it). Pass the injected clock's time
   * (or a function returning it, for long-lived parsers) for determinism;
   * without it the system time is read.
   */
  nowMs?: number | (() => number);
}

const MONTHS: Record<string, number> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};

const KMSG_RE = /^(\d+),(\d+),(\d+),([^;,]*)(?:,[^;]*)?;(.*)$/;
const DMESG_RE = /^\[\s*(\d+)\.(\d+)\]\s?(.*)$/;
const DMESG_T_RE = /^\[(?:[A-Z][a-z]{2}) ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})\]\s?(.*)$/;
const SYSLOG_RE = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? (\S+) ([^\s:[]+)(?:\[(\d+)\])?:\s?(.*)$/;
const RFC3339_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z|[+-]\d{2}:?\d{2}) (\S+) ([^\s:[]+)(?:\[(\d+)\])?:\s?(.*)$/;
const INNER_MONO_RE = /^\[\s*(\d+)\.(\d+)\]\s?(.*)$/;

/** `1234` + `567890` (fraction digits) → milliseconds. */
function secFracToMs(sec: string, frac: string): number {
  const f = Number(`0.${frac}`);
  return Math.round((Number(sec) + f) * 1000 * 1000) / 1000;
}

/** Decodes the `\xNN` escapes the kernel uses for non-printable bytes in kmsg text. */
export function unescapeKmsg(text: string): string {
  if (!text.includes('\\x')) return text;
  return text.replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function isoToMs(stamp: string, zone: string): number | undefined {
  let z = zone;
  if (/^[+-]\d{4}$/.test(z)) z = `${z.slice(0, 3)}:${z.slice(3)}`;
  // Date.parse keeps only milliseconds; trim longer fractions first.
  const s = stamp.replace(/(\.\d{3})\d+$/, '$1');
  const ms = Date.parse(`${s}${z}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Stateful across lines (a continuation line belongs to the line before it,
 * kmsg `+` fragments extend the previous record) but pure: the same input
 * always yields the same records.
 */
export class KernelLogParser {
  private prevFormat: KernelLogFormat | undefined;
  private prev: KernelLogRecord | undefined;
  private readonly nowMs: number | (() => number) | undefined;

  constructor(opts: KernelLogParseOptions = {}) {
    this.nowMs = opts.nowMs;
  }

  /** Parses a chunk of text (one or more lines). Partial trailing lines are the caller's business. */
  parse(text: string): KernelLogRecord[] {
    const out: KernelLogRecord[] = [];
    for (const rawLine of text.split('\n')) {
      const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
      this.parseLine(line, out);
    }
    return out;
  }

  private parseLine(line: string, out: KernelLogRecord[]): void {
    if (line.trim().length === 0) return;
    // Indented lines: kmsg dictionary (`  SUBSYSTEM=pci`) or the wrapped tail
    // of a multi-line dmesg record (dmesg indents continuation lines).
    if (/^\s/.test(line)) {
      if (this.prevFormat === 'kmsg') return;
      if (this.prev !== undefined) {
        const cont: KernelLogRecord = { ...this.prev, message: line.trim() };
        out.push(cont);
        return;
      }
      this.emit({ message: line.trim(), format: 'raw' }, out);
      return;
    }
    if (line.startsWith('-- ')) return; // journalctl banners: "-- Boot …", "-- No entries --"

    let m = KMSG_RE.exec(line);
    if (m) {
      const pri = Number(m[1]);
      const flags = m[4] ?? '';
      const base: Omit<KernelLogRecord, 'message'> = {
        seq: Number(m[2]),
        tsMs: Number(m[3]) / 1000,
        clock: 'monotonic',
        format: 'kmsg',
        facility: pri >> 3,
        level: pri & 7,
      };
      const text = unescapeKmsg(m[5] ?? '');
      // Pre-4.9 kernels split continued lines into fragments; `+` extends the previous line.
      if (flags.includes('+') && this.prev?.format === 'kmsg' && out.length > 0 && out[out.length - 1] === this.prev) {
        this.prev.message += text;
        this.prevFormat = 'kmsg';
        return;
      }
      this.emitLines(base, text, out);
      return;
    }
    m = DMESG_T_RE.exec(line);
    if (m) {
      const month = MONTHS[m[1] ?? ''];
      if (month !== undefined) {
        const tsMs = Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
        this.emitLines({ tsMs, clock: 'wall', format: 'dmesg-T' }, m[7] ?? '', out);
        return;
      }
    }
    m = DMESG_RE.exec(line);
    if (m) {
      this.emitLines({ tsMs: secFracToMs(m[1] ?? '0', m[2] ?? '0'), clock: 'monotonic', format: 'dmesg' }, m[3] ?? '', out);
      return;
    }
    m = SYSLOG_RE.exec(line);
    if (m) {
      const month = MONTHS[m[1] ?? ''];
      if (month !== undefined) {
        const ms = m[6] === undefined ? 0 : Math.floor(Number(`0.${m[6]}`) * 1000);
        const tsMs = this.syslogTime(month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), ms);
        this.emitWithInnerMono({ tsMs, clock: 'wall', format: 'syslog', host: m[7], tag: m[8] }, m[10] ?? '', out);
        return;
      }
    }
    m = RFC3339_RE.exec(line);
    if (m) {
      const tsMs = isoToMs(m[1] ?? '', m[2] ?? 'Z');
      const base: Omit<KernelLogRecord, 'message'> = { format: 'rfc3339', host: m[3], tag: m[4] };
      if (tsMs !== undefined) {
        base.tsMs = tsMs;
        base.clock = 'wall';
      }
      this.emitWithInnerMono(base, m[6] ?? '', out);
      return;
    }
    this.emit({ message: line, format: 'raw' }, out);
  }

  /** kern.log lines often keep the kernel's own `[1234.5678]` stamp after the tag. */
  private emitWithInnerMono(base: Omit<KernelLogRecord, 'message'>, text: string, out: KernelLogRecord[]): void {
    const inner = INNER_MONO_RE.exec(text);
    if (inner) {
      this.emitLines({ ...base, monoMs: secFracToMs(inner[1] ?? '0', inner[2] ?? '0') }, inner[3] ?? '', out);
      return;
    }
    this.emitLines(base, text, out);
  }

  private emitLines(base: Omit<KernelLogRecord, 'message'>, text: string, out: KernelLogRecord[]): void {
    const parts = text.split('\n');
    // A trailing newline inside a kmsg record is not a line of its own.
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    for (const p of parts) this.emit({ ...base, message: p.replace(/\r$/, '') }, out);
  }

  private emit(rec: KernelLogRecord, out: KernelLogRecord[]): void {
    out.push(rec);
    this.prev = rec;
    this.prevFormat = rec.format;
  }

  /** Syslog stamps carry no year: pick the one that puts the stamp at most a day in the future of `now`. */
  private syslogTime(month: number, day: number, h: number, mi: number, s: number, ms: number): number {
    const now = typeof this.nowMs === 'function' ? this.nowMs() : (this.nowMs ?? Date.now());
    const year = new Date(now).getUTCFullYear();
    const t = Date.UTC(year, month, day, h, mi, s, ms);
    return t > now + 86_400_000 ? Date.UTC(year - 1, month, day, h, mi, s, ms) : t;
  }
}

/** Parses a whole kernel-log text (any supported format, mixed per line). */
export function parseKernelLog(text: string, opts: KernelLogParseOptions = {}): KernelLogRecord[] {
  return new KernelLogParser(opts).parse(text);
}
