import { expect } from 'chai';
import type { GpuXidData } from '../../../../core/envelope.js';
import { parseKernelLog } from '../../../../agent/parsers/kernel-log.js';
import { XidParser, normalizePci } from '../../../../agent/parsers/xid.js';
import { fixture } from './fixtures.js';

const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);

function xids(text: string): GpuXidData[] {
  const p = new XidParser();
  return parseKernelLog(text, { nowMs: NOW }).flatMap((r) => p.feed(r));
}

describe('Xid parser', () => {
  it('normalizes PCI addresses to dddd:bb:dd lower case', () => {
    expect(normalizePci('0000:3B:00')).to.equal('0000:3b:00');
    expect(normalizePci('0000:b3:00.0')).to.equal('0000:b3:00');
    expect(normalizePci('00000000:3B:00.0')).to.equal('0000:3b:00');
    expect(normalizePci('00000008:01:00.0')).to.equal('0008:01:00');
    expect(normalizePci('PCI:0002:00:00')).to.equal('0002:00:00');
    expect(normalizePci('nonsense')).to.equal(null);
  });

  it('pid + name, and the GPU UUID from the preceding "GPU at PCI" line; Board Serial lines are not events (akash #244, 535.183.01, dmesg -T)', () => {
    const ev = xids(fixture('kmsg/akash-244-535.183.01-dmesg-T.log'));
    expect(ev).to.have.length(4);
    expect(ev[0]).to.deep.equal({
      code: 43,
      pci: '0000:00:05',
      gpu: 'GPU-efbdfde9-5798-a6e7-4c46-12518fa15375',
      pid: 1045242,
      process: 'pt_main_thread',
      message: 'Ch 00000008',
    });
    expect(ev[1]).to.deep.include({ code: 43, pid: 1084984, gpu: 'GPU-efbdfde9-5798-a6e7-4c46-12518fa15375' });
    expect(ev[2]).to.deep.include({ code: 31, pci: '0000:00:07', pid: 2512125, process: 'python3.10', gpu: 'GPU-3b6ec030-5adc-1847-e155-79f635584b4e' });
    expect(ev[2]?.message.startsWith('Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS')).to.equal(true);
    expect(ev[3]).to.deep.equal({
      code: 94,
      pci: '0000:00:08',
      gpu: 'GPU-c24840ec-8de1-83d5-b126-08000173ae32',
      pid: null,
      process: null,
      message: 'Contained: SM (0x1). RST: No, D-RST: No',
    });
  });

  it("pid='<unknown>', name=<unknown> on kern.log lines, non-Xid NVRM lines produce nothing (gpu-operator #1146)", () => {
    const ev = xids(fixture('kmsg/gpu-operator-1146-kern.log'));
    expect(ev.map((e) => [e.code, e.pci, e.pid, e.process, e.gpu])).to.deep.equal([
      [48, '0000:07:00', null, null, null],
      [64, '0000:07:00', null, null, null],
    ]);
    expect(ev[0]?.message).to.equal('An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at physAddr 0x7fffa8860 partition 7, subpartition 1.');
  });

  it('no pid and no name (Bumblebee #677): message is everything after the code', () => {
    const ev = xids(fixture('kmsg/bumblebee-677-dmesg-no-pid.log'));
    expect(ev).to.have.length(3);
    expect(ev[0]).to.deep.equal({ code: 32, pci: '0000:01:00', gpu: null, pid: null, process: null, message: 'Channel ID 00000000 intr 00004000' });
    expect(ev[2]).to.deep.include({ code: 31, message: 'Ch 00000003, engmask 00000101, intr 10000000' });
  });

  it('old driver format without "PCI:", and the old "GPU at 0000:01:00" UUID line (Bumblebee #329, 304.64)', () => {
    const ev = xids(fixture('kmsg/bumblebee-329-304.64-old-format.log'));
    expect(ev).to.have.length(9);
    expect(ev.every((e) => e.pci === '0000:01:00' && e.gpu === 'GPU-009fc6be-db2e-11be-ceae-9ba664de1bac')).to.equal(true);
    expect(ev[0]).to.deep.include({ code: 16, message: 'Head 00000000 Count 00000000', pid: null });
    expect(ev[8]).to.deep.include({ code: 8, message: 'Channel 00000000' });
    expect(xids('NVRM: Xid (0000:03:00): 14, Channel 00000001')[0]).to.deep.include({ code: 14, pci: '0000:03:00', message: 'Channel 00000001' });
  });

  it('MIG GPU instance, pid without name (driver source examples); GPU-I + GPU-CI (synthesized from the driver format string)', () => {
    const ev = xids(fixture('kmsg/ogkm-source-ga100-error-containment-mig.log'));
    expect(ev[0]).to.deep.equal({
      code: 94,
      pci: '0000:01:00',
      gpu: null,
      pid: 7194,
      process: null,
      message: 'Contained: CE User Channel (0x9). RST: No, D-RST: No',
      gpuInstance: 5,
    });
    expect(ev[1]).to.deep.include({ code: 94, pid: 7062, process: null });
    expect(ev[1]).to.not.have.property('gpuInstance');
    expect(ev[2]).to.deep.include({ code: 95, message: 'Uncontained: LTC TAG (0x2,0x1). RST: Yes, D-RST: No' });
    const ci = xids(fixture('kmsg/SYNTHESIZED-mig-gpu-ci.log'));
    expect(ci[0]).to.deep.equal({ code: 43, pci: '0000:01:00', gpu: null, pid: 52617, process: 'python3', message: 'Ch 00000010', gpuInstance: 1, computeInstance: 0 });
  });

  it('PCI domains other than 0000 (IBM CAST, POWER9)', () => {
    const ev = xids(fixture('kmsg/ibm-cast-power9-pci-domains-dmesg.log'));
    expect(ev.map((e) => e.pci)).to.deep.equal(['0002:01:00', '0003:01:00', '0006:01:00', '0007:01:00']);
    expect(ev.every((e) => e.code === 31)).to.equal(true);
  });

  it('name= values with colons and brackets, lines that kept only "kernel:" (open-gpu-kernel-modules #1150, 590.48.01)', () => {
    const ev = xids(fixture('kmsg/ogkm-1150-590.48.01-syslog-excerpt.log'));
    expect(ev.map((e) => [e.code, e.pci, e.pid, e.process])).to.deep.equal([
      [45, '0000:dc:00', 1818990, 'python3'],
      [45, '0000:ed:00', 1818992, 'python3'],
      [45, '0000:ba:00', 1818989, 'python3'],
      [45, '0000:97:00', 1818987, 'python3'],
    ]);
    expect(ev[0]?.message).to.equal('Ch 00000001 caused by previous Xid 149');
    const nvc = xids("NVRM: Xid (PCI:0002:00:00): 119, pid=1582259, name=nvc:[driver], Timeout after 6s of waiting for RPC response from GPU1 GSP!");
    expect(nvc[0]).to.deep.include({ code: 119, pci: '0002:00:00', pid: 1582259, process: 'nvc:[driver]' });
  });

  it('Xid 79 with pid/name as printed by newer drivers', () => {
    expect(xids('[90211.554310] NVRM: Xid (PCI:0000:3b:00): 79, pid=48213, name=python3, GPU has fallen off the bus.')[0]).to.deep.equal({
      code: 79,
      pci: '0000:3b:00',
      gpu: null,
      pid: 48213,
      process: 'python3',
      message: 'GPU has fallen off the bus.',
    });
  });

  it('Xid 79 + the companion "GPU … has fallen off the bus." line = ONE event, with the UUID (gpud SXid README)', () => {
    const ev = xids(fixture('kmsg/gpud-sxid-readme-xid79-dmesg.log'));
    expect(ev).to.deep.equal([
      { code: 79, pci: '0000:91:00', gpu: 'GPU-b6c3b2be-c55b-d076-fa0e-d464e4c7e08b', pid: null, process: null, message: 'GPU has fallen off the bus.' },
    ]);
    expect(xids(fixture('kmsg/journal-k-fallen-off-bus.log'))).to.have.length(1);
  });

  it('the multi-line "has fallen off the bus" message without an Xid is code 79 on the right PCI (NVSentinel #155, 570.158.01)', () => {
    const ev = xids(fixture('kmsg/nvsentinel-155-570.158.01-fallen-off-multiline-dmesg.log'));
    expect(ev).to.deep.equal([
      { code: 79, pci: '0000:b3:00', gpu: null, pid: null, process: null, message: 'GPU has fallen off the bus and is not responding to commands.' },
    ]);
  });

  it('the multi-line message as journal lines (one per line, own prefixes) and as one kmsg record with \\x0a', () => {
    const journal = [
      'Feb 14 05:03:41 gpu-1 kernel: NVRM: The NVIDIA GPU 0000:B3:00.0',
      'Feb 14 05:03:41 gpu-1 kernel: NVRM: (PCI ID: 10de:20b2) installed in this system has',
      'Feb 14 05:03:41 gpu-1 kernel: NVRM: fallen off the bus and is not responding to commands.',
    ].join('\n');
    expect(xids(journal)).to.have.length(1);
    expect(xids(journal)[0]).to.deep.include({ code: 79, pci: '0000:b3:00' });
    const kmsg = '3,900,1843308145,-;NVRM: The NVIDIA GPU 0000:b3:00.0\\x0aNVRM: (PCI ID: 10de:26b5) installed in this system has\\x0aNVRM: fallen off the bus and is not responding to commands.\\x0a\n';
    expect(xids(kmsg)).to.deep.equal([{ code: 79, pci: '0000:b3:00', gpu: null, pid: null, process: null, message: 'GPU has fallen off the bus and is not responding to commands.' }]);
  });

  it('an unfinished multi-line message does not fire, and is forgotten after a few records', () => {
    const text = ['NVRM: The NVIDIA GPU 0000:b3:00.0', 'a', 'b', 'c', 'd', 'e', 'NVRM: fallen off the bus and is not responding to commands.'].join('\n');
    expect(xids(text)).to.deep.equal([]);
  });

  it('the single-line "GPU at PCI:…: GPU has fallen off the bus." variant (synthesized) is code 79, with a learned UUID', () => {
    const text = ['NVRM: GPU at PCI:0000:3b:00: GPU-5f1c8f0e-1b2c-4d5e-8f90-123456789abc', fixture('kmsg/SYNTHESIZED-gpu-at-pci-fallen-off-single-line.log')].join('\n');
    expect(xids(text)).to.deep.equal([
      { code: 79, pci: '0000:3b:00', gpu: 'GPU-5f1c8f0e-1b2c-4d5e-8f90-123456789abc', pid: null, process: null, message: 'GPU has fallen off the bus.' },
    ]);
  });

  it('a second fall-off of the same GPU long after the first is reported again', () => {
    const text = [
      'Nov 07 18:17:15 server kernel: NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.',
      'Nov 07 20:17:15 server kernel: NVRM: GPU 0000:01:00.0: GPU has fallen off the bus.',
    ].join('\n');
    expect(xids(text)).to.have.length(2);
  });

  it('ignores non-Xid NVRM lines and other drivers', () => {
    const text = [
      '[    2.757687] NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  530.41.03  Release Build  (archlinux-builder@archalien)',
      '[    2.870841] NVRM objClInitPcieChipset: *** Chipset Setup Function Error!',
      'May 27 16:50:10 fedora kernel: NVRM: GPU 0000:09:00.0: RmInitAdapter failed! (0x22:0x56:894)',
      '[6781753.400584] nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 28006, Non-fatal, Link 46 MC TS crumbstore MCTO (First)',
      'NVRM: GPU Board Serial Number: 1653723052734',
    ].join('\n');
    expect(xids(text)).to.deep.equal([]);
  });
});
