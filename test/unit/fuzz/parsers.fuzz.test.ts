/**
 * Fuzzing the agent's parsers (Xid/kernel log, dcgm, conntrack): no crash, no
 * hang, bounded output, numbers always safe. See fuzz-support.ts for runs/seeds.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { parseConntrackStat, parseCount, parseConntrackTableFull } from '../../../agent/parsers/conntrack.js';
import { parseDcgmMetrics } from '../../../agent/parsers/dcgm.js';
import { KernelLogParser } from '../../../agent/parsers/kernel-log.js';
import { parsePrometheusText } from '../../../agent/parsers/prometheus-text.js';
import { XidParser } from '../../../agent/parsers/xid.js';
import { FUZZ_RUNS, fuzz, textFrom } from './fuzz-support.js';

const NOW = Date.parse('2026-11-21T10:00:00Z');

function parseAll(text: string): void {
  const parser = new KernelLogParser({ nowMs: NOW });
  const xid = new XidParser();
  const recs = parser.parse(text);
  expect(recs.length).to.be.at.most(text.split('\n').length * 2 + 1);
  for (const r of recs) {
    expect(r.message.length).to.be.at.most(text.length);
    if (r.tsMs !== undefined) expect(Number.isFinite(r.tsMs) || Number.isNaN(r.tsMs)).to.equal(true);
    for (const x of xid.feed(r)) {
      expect(Number.isSafeInteger(x.code) && x.code >= 0 && x.code <= 65_535, `code ${x.code}`).to.equal(true);
      if (x.pid !== null && x.pid !== undefined) expect(Number.isSafeInteger(x.pid)).to.equal(true);
      expect(x.message.length).to.be.at.most(4096 + 40);
    }
  }
}

const KERNEL_PIECES = [
  '6,1234,5000000123,-;', '4,99,1,+;', '[  100.000001] ', '<3>[1.5] ', 'kern  :err   : [2.5] ', '[Fri Aug 30 11:43:09 2024] ', '[ven. août 30 11:43:09 2024] ',
  '2024-08-30T13:43:09,000000+02:00 ', 'Aug 30 11:43:09 ', 'Okt  3 11:43:09.123456 ', 'gpu-1 ', 'kernel: ', 'systemd[1]: ', '<3>1 2024-08-30T11:43:09Z h kernel - - - ',
  '<3>1 - - - - - [a b="\\"]"] ', '2024-08-30T11:43:09+0000 ', 'NVRM: Xid (PCI:0000:3b:00): ', 'NVRM: Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): ', '79, ', '13, ',
  "pid='<unknown>', name=<unknown>, ", 'pid=1234, name=python, ', '100000000000000000000000, ', 'GPU has fallen off the bus.', 'NVRM: GPU at PCI:0000:3b:00: GPU-5f1c-aaaa',
  'NVRM: The NVIDIA GPU 0000:3b:00.0', 'fallen off the bus and is not responding to commands.', 'NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.', '\\x1b', '  SUBSYSTEM=pci',
  'nf_conntrack: table full, dropping packet', '-- Boot abc --', '((((((((((', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '                                        ',
];

describe(`fuzz: agent parsers (${FUZZ_RUNS} cases each)`, function () {
  this.timeout(0);

  it('kernel log + Xid parser: arbitrary text', function () {
    fuzz('kernelLog', fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 })), parseAll);
  });

  it('kernel log + Xid parser: grammar fragments with noise (kmsg, dmesg, syslog, journal, RFC 5424)', function () {
    fuzz('xidLines', textFrom(KERNEL_PIECES, 6), (text) => {
      parseAll(text);
      parseConntrackTableFull(text);
    });
  });

  it('dcgm-exporter /metrics parser', function () {
    const pieces = [
      '# HELP DCGM_FI_DEV_XID_ERRORS x', '# TYPE DCGM_FI_DEV_XID_ERRORS gauge', 'DCGM_FI_DEV_XID_ERRORS', 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_L0',
      '{gpu="0",UUID="GPU-1",pci_bus_id="00000000:3B:00.0",Hostname="n1",err_code="79",err_msg="x"}', '{uuid="GPU-2",gpu="1"}', '{a="\\"\\n\\\\"}', '{', '}', ' ', '=', '"',
      '9223372036854775794', '1e+23', 'NaN', '+Inf', '-Inf', '0', '79', '-1', '1.5', ' 1700000000000', '\n',
    ];
    fuzz('dcgm', fc.oneof(textFrom(pieces, 10), fc.string({ maxLength: 300 })), (text) => {
      const r = parsePrometheusText(text);
      expect(r.samples.length + r.invalidLines).to.be.at.most(text.split('\n').length);
      for (const g of parseDcgmMetrics(text)) {
        if (g.xid !== null) expect(typeof g.xid).to.equal('number');
        for (const v of Object.values(g.counters)) expect(typeof v).to.equal('number');
      }
    });
  });

  it('conntrack stat and count parsers', function () {
    const pieces = ['entries', 'searched', 'found', 'new', 'invalid', 'insert_failed', 'drop', 'early_drop', 'clash_resolve', 'chaintoolong', ' ', '  ', '\n', '0000001a', 'ffffffff', 'ffffffffffffffff', '00000000', 'zz', '-1', '1e5'];
    fuzz('conntrack', fc.oneof(textFrom(pieces, 6), fc.string({ maxLength: 200 })), (text) => {
      const s = parseConntrackStat(text);
      if (s) {
        for (const v of Object.values(s.counters)) expect(Number.isSafeInteger(v) && v >= 0, String(v)).to.equal(true);
        if (s.entries !== null) expect(Number.isSafeInteger(s.entries)).to.equal(true);
      }
      const c = parseCount(text);
      if (c !== null) expect(Number.isSafeInteger(c)).to.equal(true);
    });
  });
});
