import { expect } from 'chai';
import { KernelLogParser, parseKernelLog, unescapeKmsg } from '../../../../agent/parsers/kernel-log.js';
import { fixture } from './fixtures.js';

const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);

describe('kernel-log parser', () => {
  it('reads real /dev/kmsg records (this machine, 6.18.44): seq, µs→ms, facility/level, dictionary lines dropped', () => {
    const recs = parseKernelLog(fixture('kmsg/this-machine-6.18.44-dev-kmsg.txt'), { nowMs: NOW });
    // 11 boot records (seq 2..12) + 6 (88..93) + 6 (194..199); the 10 " SUBSYSTEM=/ DEVICE=" lines are not records.
    expect(recs).to.have.length(23);
    expect(recs.every((r) => r.format === 'kmsg')).to.equal(true);
    expect(recs.some((r) => r.message.startsWith('SUBSYSTEM=') || r.message.startsWith('DEVICE='))).to.equal(false);
    const r194 = recs.find((r) => r.seq === 194);
    expect(r194).to.deep.include({
      tsMs: 290.248,
      clock: 'monotonic',
      facility: 0,
      level: 6,
      message: 'acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]',
    });
    expect(recs[0]).to.deep.include({ seq: 2, level: 4, message: "[Firmware Bug]: TSC doesn't count with P0 frequency!" });
    // \x09 escapes are decoded
    expect(recs.find((r) => r.seq === 91)?.message).to.equal('\tTrampoline variant of Tasks RCU enabled.');
  });

  it('splits a kmsg record with escaped newlines into one record per line, same seq and time', () => {
    const recs = parseKernelLog(
      '4,77,1843308145,-;NVRM: The NVIDIA GPU 0000:b3:00.0\\x0aNVRM: (PCI ID: 10de:26b5) installed in this system has\\x0aNVRM: fallen off the bus and is not responding to commands.\\x0a\n',
    );
    expect(recs.map((r) => r.message)).to.deep.equal([
      'NVRM: The NVIDIA GPU 0000:b3:00.0',
      'NVRM: (PCI ID: 10de:26b5) installed in this system has',
      'NVRM: fallen off the bus and is not responding to commands.',
    ]);
    expect(recs.every((r) => r.seq === 77 && r.tsMs === 1843308.145)).to.equal(true);
  });

  it("handles kmsg flags: 'c' records stand alone, '+' fragments (pre-4.9) extend the previous line", () => {
    const recs = parseKernelLog('6,10,100,c;NVRM: Xid (PCI:0000:3b:00): 13, \n6,11,101,+;Graphics Exception\n6,12,102,-;next\n');
    expect(recs.map((r) => r.message)).to.deep.equal(['NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception', 'next']);
    const modern = parseKernelLog('6,20,200,c;a complete continued line\n6,21,201,-;x\n');
    expect(modern.map((r) => r.message)).to.deep.equal(['a complete continued line', 'x']);
    expect(unescapeKmsg('a\\x5cb')).to.equal('a\\b');
  });

  it('reads plain dmesg lines, with indented continuation lines of a multi-line record (NVSentinel #155)', () => {
    const recs = parseKernelLog(fixture('kmsg/nvsentinel-155-570.158.01-fallen-off-multiline-dmesg.log'));
    expect(recs).to.have.length(5);
    expect(recs[0]).to.deep.include({ format: 'dmesg', clock: 'monotonic', tsMs: 1843308.145, message: 'NVRM: The NVIDIA GPU 0000:b3:00.0' });
    expect(recs[1]).to.deep.include({ tsMs: 1843308.145, message: 'NVRM: (PCI ID: 10de:26b5) installed in this system has' });
    expect(recs[2]?.message).to.equal('NVRM: fallen off the bus and is not responding to commands.');
    expect(recs[3]?.tsMs).to.equal(1843439.662);
  });

  it('reads dmesg -T lines as UTC wall time, single-digit days included (akash #244)', () => {
    const recs = parseKernelLog(fixture('kmsg/akash-244-535.183.01-dmesg-T.log'));
    expect(recs).to.have.length(11);
    expect(recs[1]).to.deep.include({ format: 'dmesg-T', clock: 'wall', tsMs: Date.UTC(2024, 6, 31, 23, 14, 18) });
    expect(recs[5]).to.deep.include({ tsMs: Date.UTC(2024, 7, 5, 3, 54, 13), message: 'NVRM: GPU at PCI:0000:00:07: GPU-3b6ec030-5adc-1847-e155-79f635584b4e' });
  });

  it('reads kern.log lines: wall time from the prefix (year inferred), host, tag, inner [mono] stamp stripped', () => {
    const recs = parseKernelLog(fixture('kmsg/gpu-operator-1146-kern.log'), { nowMs: NOW });
    expect(recs).to.have.length(9);
    expect(recs[3]).to.deep.include({
      format: 'syslog',
      clock: 'wall',
      // Dec 2 is after Nov 21 2026 + 1 day, so it belongs to 2025.
      tsMs: Date.UTC(2025, 11, 2, 11, 38, 47),
      monoMs: 219470.994,
      host: 'worker4',
      tag: 'kernel',
    });
    expect(recs[3]?.message.startsWith("NVRM: Xid (PCI:0000:07:00): 48, pid='<unknown>'")).to.equal(true);
  });

  it('reads journalctl -k short and short-precise lines', () => {
    const recs = parseKernelLog(fixture('kmsg/journal-k-fallen-off-bus.log'), { nowMs: NOW });
    expect(recs[0]).to.deep.include({ format: 'syslog', tsMs: Date.UTC(2026, 10, 7, 18, 17, 15), host: 'server', tag: 'kernel' });
    const precise = parseKernelLog('Sep 12 14:25:44.984246 gpu-1 kernel: NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.\n', { nowMs: NOW });
    expect(precise[0]).to.deep.include({ tsMs: Date.UTC(2026, 8, 12, 14, 25, 44, 984), message: 'NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.' });
    expect(parseKernelLog('-- Boot 0123456789abcdef --\n')).to.deep.equal([]);
  });

  it('reads RFC 3339 syslog prefixes, with and without a colon in the offset, and keeps the tag of user-space lines', () => {
    const recs = parseKernelLog(fixture('kmsg/SYNTHESIZED-rfc3339-syslog.log'));
    expect(recs[0]).to.deep.include({ format: 'rfc3339', clock: 'wall', tsMs: Date.parse('2024-12-02T11:38:47.470Z'), tag: 'kernel', host: 'worker4' });
    expect(recs[1]).to.deep.include({ tsMs: Date.parse('2024-12-02T11:38:47Z'), monoMs: 219471.05 });
    expect(recs[2]).to.deep.include({ tag: 'systemd' });
  });

  it('detects the format per line in a mixed file and keeps unknown lines raw', () => {
    const text = [
      '6,1,5,-;kmsg line',
      '[    1.000000] dmesg line',
      'Nov 21 10:15:23 host kernel: [1234.5678] syslog line',
      '2024-11-21T10:15:23.123456+00:00 host kernel: rfc line',
      'kernel: NVRM: bare',
    ].join('\n');
    const recs = parseKernelLog(text, { nowMs: NOW });
    expect(recs.map((r) => [r.format, r.message])).to.deep.equal([
      ['kmsg', 'kmsg line'],
      ['dmesg', 'dmesg line'],
      ['syslog', 'syslog line'],
      ['rfc3339', 'rfc line'],
      ['raw', 'kernel: NVRM: bare'],
    ]);
    expect(recs[2]?.monoMs).to.equal(1234567.8);
    expect(recs[3]?.tsMs).to.equal(Date.parse('2024-11-21T10:15:23.123Z'));
  });

  it('keeps state across chunks (streaming): a continuation line in the next chunk follows the previous record', () => {
    const p = new KernelLogParser();
    expect(p.parse('[ 5.000000] NVRM: The NVIDIA GPU 0000:b3:00.0\n')).to.have.length(1);
    const next = p.parse('               NVRM: fallen off the bus and is not responding to commands.\n');
    expect(next[0]).to.deep.include({ format: 'dmesg', tsMs: 5000, message: 'NVRM: fallen off the bus and is not responding to commands.' });
  });
});
