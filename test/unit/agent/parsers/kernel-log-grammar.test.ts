/**
 * Every kernel-log line shape of docs/kernel-log-grammar.md, as people have
 * them: the Xid lines are shaped after real captures (gpud PR #46 `dmesg
 * --ctime`, util-linux PR #2648 `--time-format iso`, util-linux #614 `dmesg -r`,
 * NVIDIA forum Xid 62/154 reports), wrapped in each prefix.
 */
import { expect } from 'chai';
import { parseKernelLog, monthOf } from '../../../../agent/parsers/kernel-log.js';
import { XidParser } from '../../../../agent/parsers/xid.js';

const NOW = Date.parse('2024-12-01T00:00:00Z');
const XID = "NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter";
const WALL = Date.parse('2024-08-30T11:43:09Z');

interface Case {
  form: string;
  line: string;
  format: string;
  tsMs?: number;
  clock?: 'wall' | 'monotonic';
  host?: string;
  tag?: string;
}

const CASES: Case[] = [
  { form: 'kmsg record', line: `3,1234,5000000123,-;${XID}`, format: 'kmsg', tsMs: 5_000_000.123, clock: 'monotonic' },
  { form: 'kmsg record with caller id', line: `3,1234,5000000123,-,caller=T123;${XID}`, format: 'kmsg', tsMs: 5_000_000.123, clock: 'monotonic' },
  { form: 'dmesg', line: `[1105056.784211] ${XID}`, format: 'dmesg', tsMs: 1_105_056_784.211, clock: 'monotonic' },
  { form: 'dmesg, padded stamp', line: `[   12.000001] ${XID}`, format: 'dmesg', tsMs: 12_000.001, clock: 'monotonic' },
  { form: 'dmesg -r (raw, <PRI>)', line: `<3>[1105056.784211] ${XID}`, format: 'dmesg', tsMs: 1_105_056_784.211, clock: 'monotonic' },
  { form: 'dmesg -x (decoded facility/level)', line: `kern  :err   : [1105056.784211] ${XID}`, format: 'dmesg', tsMs: 1_105_056_784.211, clock: 'monotonic' },
  { form: 'dmesg with kernel: tag', line: `[1105056.784211] kernel: ${XID}`, format: 'dmesg', tsMs: 1_105_056_784.211, clock: 'monotonic' },
  { form: 'dmesg -T (en)', line: `[Fri Aug 30 11:43:09 2024] ${XID}`, format: 'dmesg-T', tsMs: WALL, clock: 'wall' },
  { form: 'dmesg -T (de: Fr Aug)', line: `[Fr Aug 30 11:43:09 2024] ${XID}`, format: 'dmesg-T', tsMs: WALL, clock: 'wall' },
  { form: 'dmesg -T (fr: ven. août)', line: `[ven. août 30 11:43:09 2024] ${XID}`, format: 'dmesg-T', tsMs: WALL, clock: 'wall' },
  { form: 'dmesg -T (es: vie ago)', line: `[vie ago 30 11:43:09 2024] ${XID}`, format: 'dmesg-T', tsMs: WALL, clock: 'wall' },
  { form: 'dmesg --time-format iso', line: `2024-08-30T13:43:09,000000+02:00 ${XID}`, format: 'dmesg-iso', tsMs: WALL, clock: 'wall' },
  { form: 'RFC 3164 syslog with hostname', line: `Aug 30 11:43:09 gpu-worker-042 kernel: [1105056.784211] ${XID}`, format: 'syslog', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'RFC 3164 syslog without hostname', line: `Aug 30 11:43:09 kernel: ${XID}`, format: 'syslog', tsMs: WALL, clock: 'wall', tag: 'kernel' },
  { form: 'RFC 3164 with <PRI>', line: `<3>Aug 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'RFC 3164, day padded', line: `Sep  3 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2024-09-03T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'syslog (de: Okt)', line: `Okt 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2024-10-30T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'syslog (de: Mär)', line: `Mär 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2024-03-30T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'syslog (fr: déc.)', line: `déc. 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2023-12-30T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'syslog (es: ene)', line: `ene 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2024-01-30T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'syslog (it: giu)', line: `giu 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2024-06-30T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'syslog (pt: out)', line: `out 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: Date.parse('2024-10-30T11:43:09Z'), clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'RFC 5424', line: `<3>1 2024-08-30T11:43:09.000000Z gpu-worker-042 kernel - - - ${XID}`, format: 'rfc5424', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'RFC 5424 with structured data', line: `<3>1 2024-08-30T13:43:09+02:00 gpu-worker-042 kernel - - [meta sequenceId="7" note="a \\"quoted\\" ]"] ${XID}`, format: 'rfc5424', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'journalctl -k (short)', line: `Aug 30 11:43:09 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'journalctl -o short-precise', line: `Aug 30 11:43:09.123456 gpu-worker-042 kernel: ${XID}`, format: 'syslog', tsMs: WALL + 123, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'journalctl -o short-iso', line: `2024-08-30T11:43:09+0000 gpu-worker-042 kernel: ${XID}`, format: 'rfc3339', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'journalctl -o short-iso-precise', line: `2024-08-30T11:43:09.123456+00:00 gpu-worker-042 kernel: ${XID}`, format: 'rfc3339', tsMs: WALL + 123, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
  { form: 'journalctl --no-hostname short-iso', line: `2024-08-30T11:43:09+0000 kernel: ${XID}`, format: 'rfc3339', tsMs: WALL, clock: 'wall', tag: 'kernel' },
  { form: 'journalctl --no-hostname short', line: `Aug 30 11:43:09 kernel: ${XID}`, format: 'syslog', tsMs: WALL, clock: 'wall', tag: 'kernel' },
  { form: 'rsyslog RFC 3339 (high precision)', line: `2024-08-30T11:43:09.000000+00:00 gpu-worker-042 kernel: ${XID}`, format: 'rfc3339', tsMs: WALL, clock: 'wall', host: 'gpu-worker-042', tag: 'kernel' },
];

describe('kernel-log grammar: every documented line shape parses, with its time, host and tag', function () {
  for (const c of CASES)
    it(c.form, function () {
      const recs = parseKernelLog(c.line, { nowMs: NOW });
      expect(recs, c.line).to.have.length(1);
      const r = recs[0]!;
      expect(r.format).to.equal(c.format);
      expect(r.message).to.equal(XID);
      if (c.tsMs !== undefined) expect(r.tsMs).to.be.closeTo(c.tsMs, 0.001);
      expect(r.clock).to.equal(c.clock);
      expect(r.host).to.equal(c.host);
      if (c.tag !== undefined) expect(r.tag).to.equal(c.tag);
      const xid = new XidParser().feed(r);
      expect(xid).to.have.length(1);
      expect(xid[0]).to.include({ code: 13, pci: '0000:cb:00', pid: null, process: null });
    });

  it('a user-space program line is tagged as such (the collector ignores it)', function () {
    const [r] = parseKernelLog('Aug 30 11:43:09 gpu-worker-042 systemd[1]: Started Session 42.', { nowMs: NOW });
    expect(r).to.include({ tag: 'systemd', host: 'gpu-worker-042', format: 'syslog' });
  });

  it('localized month names: one table, no name meaning two months', function () {
    const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
    months.forEach((m, i) => expect(monthOf(m)).to.equal(i));
    for (const [n, i] of [['Mär', 2], ['Mrz', 2], ['Mai', 4], ['Okt', 9], ['Dez', 11], ['janv.', 0], ['févr.', 1], ['avr.', 3], ['juil.', 6], ['août', 7], ['sept.', 8], ['déc.', 11], ['ene', 0], ['abr', 3], ['ago', 7], ['dic', 11], ['gen', 0], ['mag', 4], ['giu', 5], ['lug', 6], ['set', 8], ['ott', 9], ['fev', 1], ['out', 9]] as const)
      expect(monthOf(n), n).to.equal(i);
    expect(monthOf('Foo')).to.equal(undefined);
  });
});
