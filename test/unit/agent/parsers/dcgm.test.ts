import { expect } from 'chai';
import { DcgmTracker, isDcgmBlank, parseDcgmMetrics } from '../../../../agent/parsers/dcgm.js';
import { parsePrometheusText } from '../../../../agent/parsers/prometheus-text.js';
import { fixture } from './fixtures.js';

const H0 = 'GPU-15704b32-f531-14ce-0530-1ac21e4b68e6';
const H1 = 'GPU-edc718f8-e593-6468-b9f9-563d508366ed';

describe('Prometheus text parser', () => {
  it('reads HELP/TYPE, labels with escapes, commas and braces in values, special values, timestamps', () => {
    const r = parsePrometheusText(
      [
        '# HELP m A metric',
        '# TYPE m counter',
        'm{a="x,y}",b="q\\"uote\\\\",c="line\\nbreak",} 12 1700000000000',
        'n NaN',
        'o{} +Inf',
        'p -1.5e3',
        'q{a="unterminated} 1',
        '{a="no name"} 1',
        'r notanumber',
      ].join('\r\n'),
    );
    expect(r.types).to.deep.equal({ m: 'counter' });
    expect(r.help).to.deep.equal({ m: 'A metric' });
    expect(r.samples[0]).to.deep.equal({ name: 'm', labels: { a: 'x,y}', b: 'q"uote\\', c: 'line\nbreak' }, value: 12, valueText: '12', timestampMs: 1700000000000 });
    expect(Number.isNaN(r.samples[1]?.value)).to.equal(true);
    expect(r.samples[2]?.value).to.equal(Infinity);
    expect(r.samples[3]?.value).to.equal(-1500);
    expect(r.samples).to.have.length(4);
    expect(r.invalidLines).to.equal(3);
  });

  it('keeps the exact value text of 64-bit sentinels', () => {
    const r = parsePrometheusText('x 9223372036854775794\n');
    expect(r.samples[0]?.valueText).to.equal('9223372036854775794');
  });
});

describe('dcgm-exporter samples', () => {
  it('DCGM blank sentinels are "missing": int64 ≥ 9223372036854775792 (exact), as float, int32 ≥ 2147483632, fp64 2^47', () => {
    expect(isDcgmBlank('9223372036854775792', Number('9223372036854775792'))).to.equal(true);
    expect(isDcgmBlank('9223372036854775794', Number('9223372036854775794'))).to.equal(true);
    expect(isDcgmBlank('9223372036854775791', Number('9223372036854775791'))).to.equal(false);
    expect(isDcgmBlank('9.223372036854776e+18', 9.223372036854776e18)).to.equal(true);
    expect(isDcgmBlank('2147483632', 2147483632)).to.equal(true);
    expect(isDcgmBlank('2147483631', 2147483631)).to.equal(false);
    expect(isDcgmBlank('140737488355328', 140737488355328)).to.equal(true);
    expect(isDcgmBlank('0', 0)).to.equal(false);
    expect(isDcgmBlank('NaN', NaN)).to.equal(true);
  });

  it('UUID/Hostname labels without pci_bus_id (dcgm-exporter #250, V100)', () => {
    const g = parseDcgmMetrics(fixture('dcgm/v100-r6i3n0-dcgm-exporter-250.prom'));
    expect(g.map((x) => x.gpu)).to.have.members([
      'GPU-a9079f15-493e-6c1c-c78c-73ec2b840cba',
      'GPU-bd94f0f5-8c2f-bc95-74ad-5f99fdc33d01',
      'GPU-a6158b59-2c1e-1e63-0068-9178c4298abd',
      'GPU-8d5053b3-9280-7d1a-751b-4fd2fdd547c5',
    ]);
    const g0 = g.find((x) => x.index === '0');
    expect(g0).to.deep.include({ pci: null, model: 'Tesla V100-SXM2-32GB', hostname: 'r6i3n0', device: 'nvidia0', xid: null });
    expect(g0?.counters).to.deep.equal({ pcieReplay: 0 });
  });

  it('pci_bus_id (8-digit domain) normalized, err_code/err_msg labels (580.95.05)', () => {
    const [g] = parseDcgmMetrics(fixture('dcgm/h100-20c-580.95.05-err-code.prom'));
    expect(g).to.deep.include({ gpu: 'GPU-a0acdf3c-24b2-4dcd-853c-b19000000000', pci: '0000:03:00', index: '0', xid: 0, xidMessage: 'No Error', memoryTemp: 0 });
    const gb = parseDcgmMetrics(fixture('dcgm/gb200-dcgm-exporter-581.prom'));
    expect(gb.map((x) => x.pci)).to.deep.equal(['0008:01:00', '0009:01:00', '0018:01:00', '0019:01:00']);
  });

  it('lower-case hostname label, MIG series folded into one GPU', () => {
    const [t4] = parseDcgmMetrics(fixture('dcgm/t4-lowercase-hostname.prom'));
    expect(t4).to.deep.include({ hostname: 'hami-workshop', pci: '0000:00:04', model: 'Tesla T4' });
    const mig = parseDcgmMetrics(fixture('dcgm/a30-mig-dcgm-exporter-317.prom'));
    expect(mig).to.have.length(2);
    expect(mig.map((x) => x.index)).to.deep.equal(['2', '3']);
  });

  it('lower-case uuid, no UUID at all (keyed by gpu index), blank values skipped', () => {
    const g = parseDcgmMetrics(
      [
        'DCGM_FI_DEV_XID_ERRORS{gpu="0",uuid="GPU-aaa",hostname="n1"} 13',
        'DCGM_FI_DEV_PCIE_REPLAY_COUNTER{gpu="1"} 4',
        'DCGM_FI_DEV_RETIRED_DBE{gpu="1"} 9223372036854775794',
        'DCGM_FI_DEV_XID_ERRORS{gpu="1",err_code="31",err_msg="MMU fault"} 9223372036854775794',
        'not_dcgm{gpu="0"} 1',
      ].join('\n'),
    );
    expect(g[0]).to.deep.include({ key: 'GPU-aaa', gpu: 'GPU-aaa', hostname: 'n1', xid: 13 });
    expect(g[1]).to.deep.include({ key: 'gpu:1', gpu: null, xid: 31, xidMessage: 'MMU fault' });
    expect(g[1]?.counters).to.deep.equal({ pcieReplay: 4 });
  });
});

describe('DcgmTracker', () => {
  const scrape = (n: string) => parseDcgmMetrics(fixture(`dcgm/${n}`));

  it('a healthy GPU produces nothing, scrape after scrape', () => {
    const t = new DcgmTracker();
    expect(t.update(scrape('SYNTHESIZED-h100-scrape-1-healthy.prom'))).to.deep.equal([]);
    expect(t.update(scrape('SYNTHESIZED-h100-scrape-2-healthy.prom'))).to.deep.equal([]);
    expect(t.update(parseDcgmMetrics(fixture('dcgm/h100-20c-580.95.05-err-code.prom')))).to.deep.equal([]);
  });

  it('reports Xid changes to non-zero, DBE/retired/PCIe/NVLink/thermal increases and a remap failure, with delta and total', () => {
    const t = new DcgmTracker();
    t.update(scrape('SYNTHESIZED-h100-scrape-1-healthy.prom'));
    t.update(scrape('SYNTHESIZED-h100-scrape-2-healthy.prom'));
    const ev = t.update(scrape('SYNTHESIZED-h100-scrape-3-faults.prom'));
    const byKind = (k: string, gpu: string) => ev.filter((e) => e.kind === k && e.gpu === gpu);
    expect(ev).to.have.length(7);
    expect(byKind('xid', H1)[0]).to.deep.equal({
      kind: 'xid',
      gpu: H1,
      pci: '0000:64:00',
      index: '1',
      model: 'NVIDIA H100 80GB HBM3',
      code: 48,
      message: 'Xid 48',
      field: 'DCGM_FI_DEV_XID_ERRORS',
    });
    // VOL and AGG both moved: one event, from the VOL field.
    expect(byKind('ecc_dbe', H1)).to.have.length(1);
    expect(byKind('ecc_dbe', H1)[0]).to.deep.include({ field: 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', delta: 2, total: 2 });
    expect(byKind('row_remap_failure', H1)[0]).to.deep.include({ total: 1 });
    expect(byKind('retired_pages', H1)[0]).to.deep.include({ field: 'DCGM_FI_DEV_RETIRED_DBE', delta: 1, total: 1 });
    expect(byKind('pcie_replay', H0)[0]).to.deep.include({ delta: 7, total: 7, pci: '0000:53:00' });
    expect(byKind('nvlink_errors', H0)[0]).to.deep.include({ field: 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', delta: 3, total: 3 });
    expect(byKind('thermal_violation', H0)[0]).to.deep.include({ delta: 12000, total: 12000 });
    // GPU 0's RETIRED_DBE is a blank sentinel every time: never an event.
    expect(byKind('retired_pages', H0)).to.deep.equal([]);
  });

  it('the same Xid code on the next scrape is not a new event; a change to another non-zero code is', () => {
    const t = new DcgmTracker();
    t.update(scrape('SYNTHESIZED-h100-scrape-2-healthy.prom'));
    t.update(scrape('SYNTHESIZED-h100-scrape-3-faults.prom'));
    expect(t.update(scrape('SYNTHESIZED-h100-scrape-4-same-xid.prom'))).to.deep.equal([]);
    const ev = t.update(scrape('SYNTHESIZED-h100-scrape-5-xid-change.prom'));
    expect(ev.map((e) => [e.kind, e.gpu, e.code])).to.deep.equal([
      ['xid', H0, 79],
      ['xid', H1, 63],
    ]);
  });

  it('first sight: a non-zero Xid and a remap failure are reported; counters only set a baseline', () => {
    const t = new DcgmTracker();
    const ev = t.update(scrape('SYNTHESIZED-h100-scrape-3-faults.prom'));
    expect(ev.map((e) => e.kind).sort()).to.deep.equal(['row_remap_failure', 'xid']);
  });

  it('a counter reset (driver reload) re-baselines silently; a blank scrape does not fake an increase', () => {
    const t = new DcgmTracker();
    const line = (v: string) => parseDcgmMetrics(`DCGM_FI_DEV_PCIE_REPLAY_COUNTER{gpu="0",UUID="GPU-x"} ${v}\n`);
    t.update(line('10'));
    expect(t.update(line('2'))).to.deep.equal([]);
    expect(t.update(line('9223372036854775794'))).to.deep.equal([]);
    expect(t.update(line('5'))[0]).to.deep.include({ kind: 'pcie_replay', delta: 3, total: 5 });
    // a Xid gauge going back to 0 is not an event, and the next non-zero is
    const x = (v: number) => parseDcgmMetrics(`DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-x"} ${v}\n`);
    expect(t.update(x(0))).to.deep.equal([]);
    expect(t.update(x(31)).map((e) => e.code)).to.deep.equal([31]);
    expect(t.update(x(0))).to.deep.equal([]);
    expect(t.update(x(31)).map((e) => e.code)).to.deep.equal([31]);
  });
});
