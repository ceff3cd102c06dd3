/**
 * The Xid catalogue (rules/pack/xid-catalogue.yaml): every Xid the issue lists
 * has an entry; the loader refuses malformed entries with one clear line; Xid
 * 154 and NVLink5 texts from real drivers decode; the decoders never throw and
 * stay bounded on any string; and the shipped gpu-xid rules agree with the
 * catalogue's class for every code (the test fails when a list drifts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import type { EventEnvelope } from '../../../core/envelope.js';
import { PoisonInputError } from '../../../core/errors.js';
import { packageRoot } from '../../../adapters/paths.js';
import { defaultRulesPath, loadRules, parseRules } from '../../../rules/language/load.js';
import { matches } from '../../../rules/language/types.js';
import type { CompiledRule } from '../../../rules/language/types.js';
import type { XidCatalogue, XidClass } from '../../../rules/xid/catalogue.js';
import { classifyXid, isolationScopeOf } from '../../../rules/xid/catalogue.js';
import {
  GPU_LEVEL_RECOVERY_PATTERN,
  MAX_TEXT,
  NVLINK_NONFATAL_PATTERN,
  gpuLevelRecoveryAction,
  RECOVERY_ACTION_REQUIRED_PATTERN,
  nvlinkNonfatal,
  parseNvlinkError,
  parseRecoveryAction,
  recoveryActionRequired,
} from '../../../rules/xid/recovery.js';

/** The Xids issue 11 requires the catalogue to cover. */
const REQUIRED = [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 109, 119, 120, 121, 140, 143, 144, 145, 146, 147, 148, 149, 150, 154, 155];

const pack = loadRules(defaultRulesPath());
function catalogue(): XidCatalogue {
  const c = pack.xidCatalogue;
  if (c === undefined) throw new Error('the shipped pack has no Xid catalogue');
  return c;
}

/** Which of the pack's Xid-class rules each class must (and only it may) trigger. */
const RULES_FOR: Record<XidClass, string[]> = {
  hardware: ['gpu-xid-fatal', 'gpu-xid-node-fatal'],
  application: ['gpu-xid-application-diagnostics', 'gpu-xid-application-repeated'],
  informational: ['gpu-xid-informational'],
};
const CLASS_RULES = Object.values(RULES_FOR).flat();
/** Hardware faults: the GPU-level ones taint the GPU (gpu-xid-fatal), the node-level ones cordon (gpu-xid-node-fatal). */
function expectedRules(code: number, message: string): string[] {
  const cls = classifyXid(catalogue(), code, message);
  if (cls === null) return [];
  if (cls !== 'hardware') return RULES_FOR[cls];
  return [isolationScopeOf(catalogue(), code, message) === 'node' ? 'gpu-xid-node-fatal' : 'gpu-xid-fatal'];
}

function xidEvent(code: number, message: string): EventEnvelope {
  return { v: 1, id: 'e1', ts: '2026-12-02T08:00:00.000Z', node: 'n1', type: 'gpu.xid', source: 'test', labels: {}, data: { code, pci: '0000:3b:00', message } };
}
function rulesMatching(code: number, message: string): string[] {
  const e = xidEvent(code, message);
  const hit = (r: CompiledRule) => r.leaves.some((l) => 'match' in l && l.match !== null && matches(l.match, e));
  return CLASS_RULES.filter((id) => {
    const r = pack.byId.get(id);
    if (r === undefined) throw new Error(`pack rule ${id} missing`);
    return hit(r);
  }).sort();
}

// Xid 154 texts as drivers printed them (docs/xid-catalogue.md names where each was seen).
const REAL_154: [string, number, string, string][] = [
  ['GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)', 1, 'gpu-reset', 'GPU Reset Required'],
  ['GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)', 2, 'node-reboot', 'Node Reboot Required'],
  ['GPU recovery action changed from 0x0 (None) to 0x2 (OS Reboot)', 2, 'node-reboot', 'OS Reboot'],
  ['GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)', 4, 'drain-and-reset', 'Drain and Reset'],
  ['GPU recovery action changed from 0x0 (None) to 0x1 (PF FLR)', 1, 'gpu-reset', 'PF FLR'],
  ['[171167.621162] NVRM: Xid (PCI:0009:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x4 (Drain and Reset)', 4, 'drain-and-reset', 'Drain and Reset'],
];
// NVLink5 texts (B200/GB200 drivers), with what the driver marks them.
const REAL_NVLINK: [number, string, { unit: string; fatal: boolean; link: number; intrInfo: number | null; errorStatus: number | null }][] = [
  [144, 'SAW_MVB Fatal XC0 i0 Link 00 (0x00000001 0x00000002 0x00000000 0x00000000)', { unit: 'SAW_MVB', fatal: true, link: 0, intrInfo: 1, errorStatus: 2 }],
  [144, 'SAW_MVB Nonfatal XC0 i0 Link 00 (0x00000001 0x00000001 0x00000000 0x00000000)', { unit: 'SAW_MVB', fatal: false, link: 0, intrInfo: 1, errorStatus: 1 }],
  [145, 'RLW_REMAP Nonfatal XC0 i0 Link 00 (0x00000004 0x00000001 0x00000000 0x00000000)', { unit: 'RLW_REMAP', fatal: false, link: 0, intrInfo: 4, errorStatus: 1 }],
  [146, 'TLW_RX/TLW_RX_PIPE0 Nonfatal XC0 i0 Link 00 (0x0000000a 0x00000001 0x00000000 0x00000000)', { unit: 'TLW_RX/TLW_RX_PIPE0', fatal: false, link: 0, intrInfo: 10, errorStatus: 1 }],
  [149, 'NETIR_LINK_EVT/NETIR_LINK_DOWN Fatal XC0 i0 Link 00 (0x02500011 0x00000000 0x00000000 0x00000000)', { unit: 'NETIR_LINK_EVT/NETIR_LINK_DOWN', fatal: true, link: 0, intrInfo: 0x02500011, errorStatus: 0 }],
  [149, 'NETIR_INT  Fatal   XC0 i0 Link -1', { unit: 'NETIR_INT', fatal: true, link: -1, intrInfo: null, errorStatus: null }],
  [150, 'MSE Degraded Fatal XC0 i0 Link -1 (0x00000000 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)', { unit: 'MSE Degraded', fatal: true, link: -1, intrInfo: 0, errorStatus: 0 }],
];

describe('Xid catalogue', function () {
  describe('the shipped catalogue', function () {
    it('has an entry with a class and NVIDIA action for every Xid the issue lists, and the fallen-off-the-bus message', function () {
      const cat = catalogue();
      for (const code of REQUIRED) {
        const e = cat.entries.get(code);
        expect(e, `Xid ${code}`).to.not.equal(undefined);
        expect(e?.class, `Xid ${code}`).to.be.oneOf(['hardware', 'application', 'informational', 'decoded']);
        expect(e?.nvidia, `Xid ${code}`).to.be.a('string').and.not.equal('');
        expect(cat.sources.get(e?.source ?? '')?.url, `Xid ${code} source`).to.match(/^https:\/\//);
      }
      const bus = cat.messages.find((m) => m.id === 'fallen-off-the-bus');
      expect(bus?.class).to.equal('hardware');
      expect(bus?.nvidia).to.equal('RESTART_BM');
    });

    it("records NVIDIA's published immediate action for the well-known codes", function () {
      const nv = (code: number) => catalogue().entries.get(code)?.nvidia;
      expect([nv(13), nv(31), nv(68), nv(69), nv(94)]).to.deep.equal(['RESTART_APP', 'RESTART_APP', 'RESTART_APP', 'RESTART_APP', 'RESTART_APP']);
      expect([nv(62), nv(64), nv(95), nv(109), nv(119), nv(120), nv(140), nv(143), nv(155)]).to.deep.equal(Array(9).fill('RESET_GPU'));
      expect([nv(43), nv(63), nv(92), nv(121)]).to.deep.equal(['IGNORE', 'IGNORE', 'IGNORE', 'IGNORE']);
      expect([nv(45), nv(48), nv(74), nv(79), nv(144), nv(154)]).to.deep.equal(['WORKFLOW_XID_45', 'WORKFLOW_XID_48', 'WORKFLOW_NVLINK_ERR', 'RESTART_BM', 'WORKFLOW_NVLINK5_ERR', 'XID_154']);
      expect(catalogue().entries.get(154)?.decoder).to.equal('recovery-action');
      for (let c = 144; c <= 150; c++) expect(catalogue().entries.get(c)?.decoder, `Xid ${c}`).to.equal('nvlink5');
    });
  });

  describe('the loader', function () {
    const doc = (entries: string, extra = '') => `apiVersion: nodewarden.io/v1
kind: XidCatalogue
sources:
  nv: { title: NVIDIA, url: "https://docs.nvidia.com/x" }
entries:
${entries}
${extra}`;
    const good = '  - { code: 13, mnemonic: ROBUST_CHANNEL_GR_EXCEPTION, name: Graphics Engine Exception, nvidia: RESTART_APP, class: application, source: nv }';
    function refusal(text: string): PoisonInputError {
      try {
        parseRules(text, 'cat.yaml');
      } catch (err) {
        expect(err).to.be.instanceOf(PoisonInputError);
        return err as PoisonInputError;
      }
      throw new Error('the catalogue was accepted');
    }

    it('accepts a well-formed catalogue next to rules and returns it', function () {
      const rs = parseRules(doc(good), 'cat.yaml');
      expect(rs.rules).to.have.length(0);
      expect(rs.xidCatalogue?.entries.get(13)?.class).to.equal('application');
    });

    it('rejects malformed entries with one line naming each field', function () {
      const err = refusal(
        doc(`${good}
  - { code: 13, mnemonic: X, name: dup, nvidia: RESTART_APP, class: application, source: nv }
  - { code: 0, mnemonic: lower case, name: "", nvidia: REBOOT_NOW, class: fatal, source: nowhere, colour: red }
  - { code: 154, mnemonic: GPU_RECOVERY_ACTION_CHANGED, name: x, nvidia: XID_154, class: decoded, source: nv }
  - { code: 62, mnemonic: PMU_HALT_ERROR, name: x, nvidia: RESET_GPU, class: hardware, decoder: nvlink5, source: nv }`,
          'messages:\n  - { id: bus, pattern: "([", name: x, nvidia: RESTART_BM, class: hardware, source: nv }'),
      );
      expect(err.message).to.not.include('\n');
      expect(err.code).to.equal('RULE_INVALID');
      const m = err.message;
      expect(m).to.include('cat.yaml#/entries/1/code: duplicate Xid 13');
      expect(m).to.include('cat.yaml#/entries/2/code: must be an integer Xid code 1-999');
      expect(m).to.include("cat.yaml#/entries/2/mnemonic: must be NVIDIA's mnemonic");
      expect(m).to.include('cat.yaml#/entries/2/name: must be a non-empty string');
      expect(m).to.include('cat.yaml#/entries/2/nvidia: must be one of RESTART_APP');
      expect(m).to.include('cat.yaml#/entries/2/class: must be one of hardware, application, informational, decoded');
      expect(m).to.include('cat.yaml#/entries/2/source: must name one of the sources (nv)');
      expect(m).to.include('cat.yaml#/entries/2/colour: unknown field');
      expect(m).to.include('cat.yaml#/entries/3/decoder: a decoded entry needs decoder: one of recovery-action, nvlink5');
      expect(m).to.include('cat.yaml#/entries/4/decoder: only a class: decoded entry has a decoder');
      expect(m).to.include('cat.yaml#/messages/0/pattern: invalid regular expression');
    });

    it('rejects a catalogue without sources or entries, a wrong apiVersion, and two catalogues in one load', function () {
      const none = refusal('apiVersion: nodewarden.io/v2\nkind: XidCatalogue\nsources: {}\nentries: []\n');
      expect(none.message).to.include('cat.yaml#/apiVersion: must be nodewarden.io/v1');
      expect(none.message).to.include('cat.yaml#/sources: must be a non-empty mapping');
      expect(none.message).to.include('cat.yaml#/entries: must be a list of 1-1000 entries');
      const two = refusal(`${doc(good)}\n---\n${doc(good)}`);
      expect(two.message).to.include('2 Xid catalogues loaded; at most one is allowed');
    });
  });

  describe('Xid 154 recovery action', function () {
    for (const [text, to, action, label] of REAL_154) {
      it(`reads "${text.slice(-48)}"`, function () {
        const p = parseRecoveryAction(text);
        expect(p).to.deep.include({ from: 0, to, action, toLabel: label, fromLabel: 'None' });
        expect(recoveryActionRequired(text)).to.equal(true);
        expect(classifyXid(catalogue(), 154, text)).to.equal('hardware');
      });
    }

    it('a change back to None, or a text without the action, requires nothing and is informational', function () {
      const back = 'GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)';
      expect(parseRecoveryAction(back)).to.deep.equal({ from: 1, to: 0, fromLabel: 'GPU Reset Required', toLabel: 'None', action: 'none' });
      for (const t of [back, 'GPU recovery action changed', '', 'GPU recovery action changed from 0x0 (None) to 0x00000000 (None)']) {
        expect(recoveryActionRequired(t), t).to.equal(false);
        expect(classifyXid(catalogue(), 154, t), t).to.equal('informational');
      }
      expect(parseRecoveryAction('GPU recovery action changed from 0x0 (None) to 0x9 (Something New)')?.action).to.equal('unknown');
      expect(parseRecoveryAction(42)).to.equal(null);
    });
  });

  describe('NVLink5 Xids 144-150', function () {
    for (const [code, text, want] of REAL_NVLINK) {
      it(`decodes Xid ${code} "${text.slice(0, 40)}"`, function () {
        expect(parseNvlinkError(text)).to.deep.include({ ...want, controller: 0, instance: 0 });
        expect(nvlinkNonfatal(text)).to.equal(!want.fatal);
        expect(classifyXid(catalogue(), code, text)).to.equal(want.fatal ? 'hardware' : 'informational');
      });
    }

    it('a text that does not have the shape is isolated (the catalogue fallback) and decodes to null', function () {
      expect(parseNvlinkError('NVLINK: SAW Error')).to.equal(null);
      expect(classifyXid(catalogue(), 144, 'NVLINK: SAW Error')).to.equal('hardware');
    });
  });

  describe('the decoders on arbitrary input (fast-check)', function () {
    const anyText = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.tuple(fc.constantFrom(...REAL_154.map((r) => r[0]), ...REAL_NVLINK.map((r) => r[1])), fc.integer({ min: 0, max: 120 }), fc.string({ maxLength: 40 })).map(([t, cut, tail]) => t.slice(0, cut) + tail),
    );

    it('never throw, and return bounded fields', function () {
      fc.assert(
        fc.property(anyText, (s) => {
          const r = parseRecoveryAction(s);
          if (r !== null) {
            expect(r.fromLabel.length).to.be.at.most(64);
            expect(r.toLabel.length).to.be.at.most(64);
            expect(r.to).to.be.within(0, 0xffffffff);
          }
          const n = parseNvlinkError(s);
          if (n !== null) {
            expect(n.unit.length).to.be.at.most(80);
            expect(n.link).to.be.within(-999, 999);
          }
          recoveryActionRequired(s);
          nvlinkNonfatal(s);
        }),
        { numRuns: 1500 },
      );
    });

    it('classify any well-formed 154 text by its target value, whatever the labels', function () {
      const label = fc.string({ maxLength: 64 }).filter((s) => !/[()]/.test(s));
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), label, label, (from, to, fl, tl) => {
          const t = `GPU recovery action changed from 0x${from.toString(16)} (${fl}) to 0x${to.toString(16)} (${tl})`;
          expect(parseRecoveryAction(t)?.to).to.equal(to);
          expect(recoveryActionRequired(t)).to.equal(to !== 0);
        }),
        { numRuns: 500 },
      );
    });

    it('stay fast on long adversarial text', function () {
      const big = 'GPU recovery action changed from 0x0 ('.repeat(3000) + 'Nonfatal  XC1 i1 Link '.repeat(3000);
      const t0 = process.hrtime.bigint();
      parseRecoveryAction(big);
      parseNvlinkError(big);
      recoveryActionRequired(big);
      nvlinkNonfatal(big);
      expect(Number(process.hrtime.bigint() - t0) / 1e6).to.be.below(500);
      expect(big.length).to.be.greaterThan(MAX_TEXT);
    });
  });

  describe('the shipped gpu-xid rules agree with the catalogue', function () {
    it('every catalogued code (by its name as the message) triggers exactly the rules of its class', function () {
      for (const e of catalogue().entries.values()) {
        const cls = classifyXid(catalogue(), e.code, e.name);
        expect(cls, `Xid ${e.code}`).to.not.equal(null);
        expect(rulesMatching(e.code, e.name), `Xid ${e.code} (${cls ?? ''})`).to.deep.equal(expectedRules(e.code, e.name));
      }
    });

    it('decoded codes agree on real driver texts and on arbitrary texts', function () {
      const cases: [number, string][] = [...REAL_154.map((r): [number, string] => [154, r[0]]), ...REAL_NVLINK.map((r): [number, string] => [r[0], r[1]])];
      for (const [code, text] of cases) expect(rulesMatching(code, text), `${code} ${text}`).to.deep.equal(expectedRules(code, text));
      fc.assert(
        fc.property(fc.constantFrom(144, 145, 146, 147, 148, 149, 150, 154), fc.string({ maxLength: 200 }), (code, text) => {
          fc.pre(!/allen off the bus/.test(text));
          expect(rulesMatching(code, text)).to.deep.equal(expectedRules(code, text));
        }),
        { numRuns: 300 },
      );
    });

    it('codes outside the catalogue trigger none of them; the fallen-off-the-bus text isolates whatever its code', function () {
      for (let code = 0; code <= 200; code++) if (!catalogue().entries.has(code)) expect(rulesMatching(code, 'some driver text'), `Xid ${code}`).to.deep.equal([]);
      expect(rulesMatching(0, 'NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.')).to.deep.equal(['gpu-xid-node-fatal']);
      expect(rulesMatching(62, 'GPU has fallen off the bus.')).to.deep.equal(['gpu-xid-node-fatal']);
      expect(classifyXid(catalogue(), 0, 'GPU has fallen off the bus.')).to.equal('hardware');
    });

    it('the pack carries the decoders\' patterns verbatim', function () {
      const text = readFileSync(join(packageRoot(), 'rules', 'pack', 'gpu-xid.yaml'), 'utf8');
      for (const p of [RECOVERY_ACTION_REQUIRED_PATTERN, NVLINK_NONFATAL_PATTERN]) {
        expect(text).to.include(`regex: '${p}'`);
        expect(text).to.include(`notRegex: '${p}'`);
      }
      expect(text).to.include(`regex: '${GPU_LEVEL_RECOVERY_PATTERN}'`);
      expect(text).to.include(`notRegex: '${GPU_LEVEL_RECOVERY_PATTERN}'`);
    });

    it('isolates at GPU scope exactly where NVIDIA\'s action concerns the GPU', function () {
      const scopes = [...catalogue().entries.values()].filter((e) => e.class === 'hardware').map((e) => [e.code, isolationScopeOf(catalogue(), e.code, e.name)]);
      expect(scopes.filter(([, s]) => s === 'node').map(([c]) => c)).to.deep.equal([79]);
      const want154: Record<string, 'gpu' | 'node'> = { 'gpu-reset': 'gpu', 'drain-and-reset': 'gpu', 'drain-p2p': 'gpu', 'node-reboot': 'node', 'system-reboot': 'node', 'bus-reset': 'node', 'recover-imex-domain': 'node', unknown: 'node' };
      for (let v = 1; v <= 9; v++) {
        const t = `GPU recovery action changed from 0x0 (None) to 0x${v} (x)`;
        const action = parseRecoveryAction(t)?.action ?? 'none';
        expect(isolationScopeOf(catalogue(), 154, t), t).to.equal(want154[action]);
        expect(gpuLevelRecoveryAction(t), t).to.equal(want154[action] === 'gpu');
      }
      expect(isolationScopeOf(catalogue(), 154, 'GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)')).to.equal(null);
      expect(isolationScopeOf(catalogue(), 13, 'x')).to.equal(null);
    });
  });
});
