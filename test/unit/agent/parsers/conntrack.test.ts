import { expect } from 'chai';
import { parseConntrackStat, parseConntrackTableFull, parseCount } from '../../../../agent/parsers/conntrack.js';
import { parseKernelLog } from '../../../../agent/parsers/kernel-log.js';
import { fixture } from './fixtures.js';

describe('conntrack parsers', () => {
  it('pre-5.10 header (searched … delete_list): sums over CPUs, entries taken once (netdata #161, real counters)', () => {
    const s = parseConntrackStat(fixture('conntrack/netdata-161-pre-5.10-searched.txt'));
    expect(s).to.not.equal(null);
    expect(s?.cpus).to.equal(3);
    // entries is global: 0x71e = 1822 on every line, NOT 3 × 1822.
    expect(s?.entries).to.equal(1822);
    expect(s?.counters).to.not.have.property('entries');
    // Expected sums worked out from the hex cells, column by column:
    expect(s?.counters).to.deep.equal({
      searched: 140198351, //      0x0760e6ff + 0x00b57258 + 0x0044e878 = 123791103 + 11891288 + 4515960
      found: 2695749456, //        0x8c03e663 + 0x0f2d9e94 + 0x057c5a59 = 2349065827 + 254647956 + 92035673
      new: 9664239, //             0x00522d9e + 0x0026027a + 0x001b46d7 = 5385630 + 2491002 + 1787607
      invalid: 2117220, //         0x001e9e1a + 0x00010d90 + 0x0000a2ba = 2006554 + 69008 + 41658
      ignore: 28632452, //         0x00ac099f + 0x007c689a + 0x008c734b = 11274655 + 8153242 + 9204555
      delete: 10203662, //         0x006c61af + 0x001a408f + 0x00150fd0 = 7102895 + 1720463 + 1380304
      delete_list: 8754252, //     0x005a1da9 + 0x0017d10c + 0x0013a597 = 5905833 + 1560844 + 1287575
      insert: 8214404, //          0x003fe1df + 0x00239697 + 0x0019df0e = 4186591 + 2332311 + 1695502
      insert_failed: 0,
      drop: 1346, //               0x53a + 0 + 0x8 = 1338 + 8
      early_drop: 0,
      error: 135761, //            icmp_error 0x21251 = 135761
      expect_new: 55, //           0x29 + 0x7 + 0x7 = 41 + 7 + 7
      expect_create: 36695, //     0x4b29 + 0x294d + 0x1ae1 = 19241 + 10573 + 6881
      expect_delete: 39190, //     0x69a6 + 0x1de8 + 0x1188 = 27046 + 7656 + 4488
      search_restart: 0,
    });
    expect(s?.raw.icmp_error).to.equal(135761);
    expect(s?.raw).to.not.have.property('clashres');
  });

  it('5.15+ header (clashres … chainlength): clash_resolve / chaintoolong normalized, raw names kept', () => {
    const s = parseConntrackStat(fixture('conntrack/SYNTHESIZED-5.15plus-nonzero.txt'));
    expect(s?.entries).to.equal(15000); // 0x3a98
    expect(s?.counters).to.deep.include({
      clash_resolve: 63, //  0x1f + 0x20 + 0 = 31 + 32
      found: 1588, //        0x4d2 + 0x162 = 1234 + 354
      invalid: 3511, //      0xc8a + 0x12c + 0x1 = 3210 + 300 + 1
      chaintoolong: 3, //    0x2 + 0 + 0x1
      insert_failed: 20, //  0x11 + 0x3 = 17 + 3
      drop: 24, //           0x13 + 0x4 + 0x1 = 19 + 4 + 1
      early_drop: 7, //      0x5 + 0 + 0x2
      error: 8, //           0x7 + 0 + 0x1
      search_restart: 600, // 0x1f4 + 0x64 = 500 + 100
    });
    expect(s?.counters).to.not.have.property('clashres');
    expect(s?.counters).to.not.have.property('chainlength');
    expect(s?.raw).to.deep.include({ clashres: 63, chainlength: 3 });
  });

  it('real 5.15+ captures: elastic/beats #46138 (4 CPUs) and this machine (6.18.44)', () => {
    const beats = parseConntrackStat(fixture('conntrack/beats-46138-5.15plus-chainlength.txt'));
    expect(beats?.cpus).to.equal(4);
    expect(beats?.entries).to.equal(171); // 0xab, once
    expect(beats?.counters.clash_resolve).to.equal(0);
    expect(beats?.counters.chaintoolong).to.equal(0);
    const here = parseConntrackStat(fixture('conntrack/this-machine/nf_conntrack'));
    expect(here?.cpus).to.equal(2);
    expect(here?.columns).to.include('chainlength');
    expect(Object.keys(here?.counters ?? {})).to.have.length(16);
    expect(parseCount(fixture('conntrack/this-machine/nf_conntrack_max'))).to.equal(262144);
    expect(parseCount(fixture('conntrack/this-machine/nf_conntrack_count'))).to.equal(0);
  });

  it('5.10–5.14 header (clashres … delete_list), reconstructed from nftables #138', () => {
    const s = parseConntrackStat(fixture('conntrack/RECONSTRUCTED-nftables-138-5.10-clashres-delete_list.txt'));
    expect(s?.entries).to.equal(4);
    expect(s?.counters).to.deep.include({ clash_resolve: 0, delete_list: 0, invalid: 112, search_restart: 1 }); // 0x70 = 112
  });

  it('any header: a kernel without search_restart (2.6 era) is keyed by what it prints', () => {
    const s = parseConntrackStat(fixture('conntrack/SYNTHESIZED-2.6-no-search_restart.txt'));
    expect(s?.cpus).to.equal(2);
    expect(s?.counters).to.not.have.property('search_restart');
    expect(s?.counters).to.deep.include({ searched: 384, insert_failed: 3, drop: 1, early_drop: 1 }); // 0x100+0x80, 0x2+0x1, 0x1+0, 0+0x1
    expect(s?.entries).to.equal(16);
  });

  it('a future header with an unknown column is summed under its own name; bad lines are skipped, not fatal', () => {
    const text = 'entries  found drop brand_new\n00000002  00000001 00000002 00000003\ngarbage line\n00000002  00000001 00000002 0000000a\n00000002 zz 00 00\n';
    const s = parseConntrackStat(text);
    expect(s?.counters).to.deep.equal({ found: 2, drop: 4, brand_new: 13 });
    expect(s?.skippedLines).to.equal(2);
    expect(parseConntrackStat('')).to.equal(null);
    expect(parseConntrackStat('00000001 00000002\n')).to.equal(null);
    expect(parseConntrackStat('entries drop\n')).to.equal(null);
  });

  it('parseCount reads nf_conntrack_count / _max', () => {
    expect(parseCount('262144\n')).to.equal(262144);
    expect(parseCount(' 0 ')).to.equal(0);
    expect(parseCount('')).to.equal(null);
    expect(parseCount('abc')).to.equal(null);
  });

  it('recognizes every "table full" variant and nothing else (k8s #71261, #18604, kube-aws #476, hotsos #101, LKML 2001)', () => {
    const recs = parseKernelLog(fixture('kmsg/table-full-variants.log'));
    const hits = recs.map((r) => parseConntrackTableFull(r.message));
    expect(hits).to.deep.equal([
      { module: 'nf_conntrack' },
      { module: 'nf_conntrack' },
      { module: 'nf_conntrack' },
      { module: 'nf_conntrack' },
      { module: 'nf_conntrack' },
      { module: 'ip_conntrack' },
      null, // net_ratelimit: N callbacks suppressed
    ]);
    expect(parseConntrackTableFull('nf_conntrack: falling back to vmalloc.')).to.equal(null);
    expect(parseConntrackTableFull('nf_conntrack: default automatic helper assignment has been turned off for security reasons')).to.equal(null);
  });
});
