/**
 * Parsers for the netfilter connection-tracking signals. Pure functions over text.
 *
 * `/proc/net/stat/nf_conntrack` is one header line and one line of 8-digit hex
 * numbers per possible CPU. The columns changed over kernel versions
 * (net/netfilter/nf_conntrack_standalone.c, ct_cpu_seq_show):
 *
 *   < 5.10  entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
 *   5.10+   entries  clashres found new invalid ignore delete delete_list insert …
 *   5.15+   entries  clashres found new invalid ignore delete chainlength insert …
 *   2.6.x   (no search_restart column)
 *
 * so values are keyed by whatever the header says, never by position.
 * Counters are summed over CPU lines; `entries` is the global table size
 * printed on every line and is taken once. Names are normalized to the
 * kernel's struct field names: `clashres` → `clash_resolve`, `chainlength` →
 * `chaintoolong`, `icmp_error` → `error` (the column has always printed
 * `st->error`; `conntrack -S` calls it `error`).
 */

/** Header column → output counter name. Columns not listed keep their own name. */
export const CONNTRACK_COLUMN_ALIASES: Readonly<Record<string, string>> = {
  clashres: 'clash_resolve',
  chainlength: 'chaintoolong',
  icmp_error: 'error',
};

export interface ConntrackStat {
  /** Header columns as printed (raw names). */
  columns: string[];
  /** Global number of tracked connections (`entries`), or null without that column. */
  entries: number | null;
  /** Summed counters, normalized names (see {@link CONNTRACK_COLUMN_ALIASES}); `entries` excluded. */
  counters: Record<string, number>;
  /** The same sums under the raw header names. */
  raw: Record<string, number>;
  /** CPU lines summed. */
  cpus: number;
  /** Lines that did not match the header (wrong width, not hex) and were ignored. */
  skippedLines: number;
}

const HEX_RE = /^[0-9a-fA-F]{1,16}$/;

/** Parses `/proc/net/stat/nf_conntrack`. Returns null when there is no header or no CPU line. */
export function parseConntrackStat(text: string): ConntrackStat | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const header = lines[0];
  if (header === undefined) return null;
  const columns = header.split(/\s+/);
  if (columns.every((c) => HEX_RE.test(c))) return null; // the first line is data: no header to key by
  const raw: Record<string, number> = {};
  for (const c of columns) if (c !== 'entries') raw[c] = 0;
  let entries: number | null = null;
  let cpus = 0;
  let skippedLines = 0;
  for (const line of lines.slice(1)) {
    const cells = line.split(/\s+/);
    if (cells.length !== columns.length || !cells.every((c) => HEX_RE.test(c))) {
      skippedLines += 1;
      continue;
    }
    cpus += 1;
    cells.forEach((cell, i) => {
      const col = columns[i] ?? '';
      const v = parseInt(cell, 16);
      if (col === 'entries') {
        if (entries === null) entries = v;
      } else {
        raw[col] = (raw[col] ?? 0) + v;
      }
    });
  }
  if (cpus === 0) return null;
  // A sum past 2^53 cannot be sent exactly (it would read as 1e+19): such a counter is left out.
  for (const [k, v] of Object.entries(raw)) if (!Number.isSafeInteger(v)) delete raw[k];
  if (entries !== null && !Number.isSafeInteger(entries)) entries = null;
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) counters[CONNTRACK_COLUMN_ALIASES[k] ?? k] = v;
  return { columns, entries, counters, raw, cpus, skippedLines };
}

/** Parses `nf_conntrack_count` / `nf_conntrack_max` (a decimal number and a newline). */
export function parseCount(text: string): number | null {
  const t = text.trim();
  if (!/^\d{1,15}$/.test(t)) return null;
  return Number(t);
}

export interface ConntrackTableFull {
  /** `nf_conntrack` (modern) or `ip_conntrack` (2.6-era kernels). */
  module: 'nf_conntrack' | 'ip_conntrack';
}

const TABLE_FULL_RE = /\b(nf_conntrack|ip_conntrack): (?:(?:nf|ip)_conntrack: )?table full, dropping packet/;

/**
 * Recognizes the kernel's "table full" line in its variants:
 * `nf_conntrack: table full, dropping packet`, the doubled prefix
 * `nf_conntrack: nf_conntrack: table full, dropping packet` (4.x+ with
 * net_ratelimit), and `ip_conntrack: table full, dropping packet`.
 * `net_ratelimit: N callbacks suppressed` neighbours are not matches.
 */
export function parseConntrackTableFull(message: string): ConntrackTableFull | null {
  const m = TABLE_FULL_RE.exec(message);
  if (!m) return null;
  return { module: m[1] === 'ip_conntrack' ? 'ip_conntrack' : 'nf_conntrack' };
}
