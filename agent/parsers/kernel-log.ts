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

export type KernelLogFormat = 'kmsg' | 'dmesg' | 'dmesg-T' | 'dmesg-iso' | 'syslog' | 'rfc3339' | 'rfc5424' | 'raw';

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

/**
 * Abbreviated month names as `strftime("%b")` prints them in the C/English,
 * German, French, Spanish, Italian and Portuguese locales (glibc `abmon`),
 * lower-cased without a trailing dot. No two locales give one name two months.
 * docs/kernel-log-grammar.md lists them.
 */
const MONTH_NAMES: ReadonlyArray<readonly string[]> = [
  ['jan', 'janv', 'ene', 'gen', 'januar', 'january', 'janvier', 'enero'],
  ['feb', 'févr', 'fevr', 'fév', 'fev'],
  ['mar', 'mär', 'mrz', 'mars'],
  ['apr', 'avr', 'avril', 'abr'],
  ['may', 'mai', 'mag'],
  ['jun', 'juin', 'giu'],
  ['jul', 'juil', 'lug'],
  ['aug', 'août', 'aout', 'ago'],
  ['sep', 'sept', 'set'],
  ['oct', 'okt', 'ott', 'out'],
  ['nov'],
  ['dec', 'dez', 'déc', 'dic'],
];
const MONTHS: ReadonlyMap<string, number> = new Map(MONTH_NAMES.flatMap((names, i) => names.map((n) => [n, i] as const)));

/** Month number of a (possibly localized, possibly dotted) month name. */
export function monthOf(name: string): number | undefined {
  return MONTHS.get(name.toLowerCase().replace(/\.$/, ''));
}

// A month or weekday token: letters (any script) and an optional trailing dot.
const MON = '(\\p{L}{3,9}\\.?)';
const KMSG_RE = /^(\d+),(\d+),(\d+),([^;,]*)(?:,[^;]*)?;(.*)$/;
/** `dmesg`, `dmesg -r` (`<6>[...]`), `dmesg -x` (`kern  :info  : [...]`), and a `kernel:` tag after the stamp. */
const DMESG_RE = /^(?:<(\d{1,3})>|[a-z]{2,8} *:[a-z]{3,6} *: )?\[\s*(\d+)\.(\d+)\]\s?(?:kernel: )?(.*)$/;
/** `dmesg -T` / `--ctime`: `[Fri Aug 30 11:43:09 2024] msg`, weekday and month as the locale prints them. */
const DMESG_T_RE = new RegExp(`^\\[\\p{L}{2,9}\\.?,? ${MON} +(\\d{1,2}) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})\\]\\s?(.*)$`, 'u');
/** RFC 3164 syslog / journalctl short and short-precise, with or without `<PRI>` and hostname. */
const SYSLOG_RE = new RegExp(`^(?:<\\d{1,3}>)?${MON} +(\\d{1,2}) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))? (?:(\\S*[^\\s:]) )?([^\\s:[]+)(?:\\[(\\d+)\\])?:\\s?(.*)$`, 'u');
/** RFC 3339 prefix (rsyslog, journalctl short-iso[-precise]), with or without hostname. */
const RFC3339_RE = /^(?:<\d{1,3}>)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z|[+-]\d{2}:?\d{2}) (?:(\S*[^\s:]) )?([^\s:[]+)(?:\[(\d+)\])?:\s?(.*)$/;
/** RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`. */
const RFC5424_RE = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\"]|\\.|"(?:[^"\\]|\\.)*")*\])+)(?: (.*))?$/;
/** `dmesg --time-format iso`: `2023-12-22T12:26:24,559615-08:00 msg` (no host, no tag). */
const DMESG_ISO_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}),(\d{1,9})(Z|[+-]\d{2}:?\d{2}) (.*)$/;
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

function isoToMs(stampIn: string, zone: string): number | undefined {
  let z = zone;
  // `dmesg --time-format iso` writes a comma before the fraction.
  let stamp = stampIn.replace(',', '.');
  if (z === '') {
    // RFC 5424 carries its zone inside the stamp.
    const zm = /(Z|[+-]\d{2}:?\d{2})$/.exec(stamp);
    if (!zm) return undefined;
    z = zm[1] ?? 'Z';
    stamp = stamp.slice(0, -z.length);
  }
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
      const month = monthOf(m[1] ?? '');
      if (month !== undefined) {
        const tsMs = Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
        this.emitLines({ tsMs, clock: 'wall', format: 'dmesg-T' }, m[7] ?? '', out);
        return;
      }
    }
    m = DMESG_RE.exec(line);
    if (m) {
      const base: Omit<KernelLogRecord, 'message'> = { tsMs: secFracToMs(m[2] ?? '0', m[3] ?? '0'), clock: 'monotonic', format: 'dmesg' };
      if (m[1] !== undefined) {
        base.facility = Number(m[1]) >> 3;
        base.level = Number(m[1]) & 7;
      }
      this.emitLines(base, m[4] ?? '', out);
      return;
    }
    m = RFC5424_RE.exec(line);
    if (m) {
      const tsMs = m[2] === '-' ? undefined : isoToMs(m[2] ?? '', '');
      const base: Omit<KernelLogRecord, 'message'> = { format: 'rfc5424', facility: Number(m[1]) >> 3, level: Number(m[1]) & 7, tag: m[4] === '-' ? undefined : m[4] };
      if (m[3] !== undefined && m[3] !== '-') base.host = m[3];
      if (tsMs !== undefined) {
        base.tsMs = tsMs;
        base.clock = 'wall';
      }
      // The message may start with a UTF-8 BOM (RFC 5424 §6.4).
      this.emitWithInnerMono(base, (m[8] ?? '').replace(/^\uFEFF/, ''), out);
      return;
    }
    m = SYSLOG_RE.exec(line);
    if (m) {
      const month = monthOf(m[1] ?? '');
      if (month !== undefined) {
        const ms = m[6] === undefined ? 0 : Math.floor(Number(`0.${m[6]}`) * 1000);
        const tsMs = this.syslogTime(month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), ms);
        const base: Omit<KernelLogRecord, 'message'> = { tsMs, clock: 'wall', format: 'syslog', tag: m[8] };
        if (m[7] !== undefined) base.host = m[7];
        this.emitWithInnerMono(base, m[10] ?? '', out);
        return;
      }
    }
    m = RFC3339_RE.exec(line);
    if (m) {
      const tsMs = isoToMs(m[1] ?? '', m[2] ?? 'Z');
      const base: Omit<KernelLogRecord, 'message'> = { format: 'rfc3339', tag: m[4] };
      if (m[3] !== undefined) base.host = m[3];
      if (tsMs !== undefined) {
        base.tsMs = tsMs;
        base.clock = 'wall';
      }
      this.emitWithInnerMono(base, m[6] ?? '', out);
      return;
    }
    m = DMESG_ISO_RE.exec(line);
    if (m) {
      const tsMs = isoToMs(`${m[1] ?? ''}${m[2] === undefined ? '' : `.${m[2]}`}`, m[3] ?? 'Z');
      const base: Omit<KernelLogRecord, 'message'> = { format: 'dmesg-iso' };
      if (tsMs !== undefined) {
        base.tsMs = tsMs;
        base.clock = 'wall';
      }
      this.emitLines(base, m[4] ?? '', out);
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
