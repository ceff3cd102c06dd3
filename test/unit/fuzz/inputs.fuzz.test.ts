/**
 * Fuzzing the engine's inputs: the envelope decoder (and the batch processor:
 * every rejected message becomes a dead letter with a reason), the rule
 * compiler, and the control API's request parsing. See fuzz-support.ts.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { validateLedgerQuery, validatePauseBody, validateResumeBody, validateToggleBody } from '../../../control/api.js';
import { ManualClock } from '../../../core/clock.js';
import type { Decision } from '../../../core/decision.js';
import { decodeEnvelope, envelopeProblems, EVENT_TYPES } from '../../../core/envelope.js';
import { PoisonInputError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { controlCharProblem } from '../../../core/text.js';
import type { InputProblem } from '../../../core/errors.js';
import { compileDocument } from '../../../rules/language/compile.js';
import { parseRules } from '../../../rules/language/load.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { SubmitResult } from '../../../remediations/ports.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import { FUZZ_RUNS, fuzz } from './fuzz-support.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
/** Any JSON value, kept shallow: deep random trees cost generation time, not coverage. */
const junk = fc.jsonValue({ maxDepth: 2 });

function expectPoison(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(PoisonInputError);
    const p = err as PoisonInputError;
    expect(p.problems.length).to.be.greaterThan(0);
    for (const pr of p.problems) expect(pr.message.length).to.be.greaterThan(0);
  }
}

/** Valid envelopes, then mutated field by field: the decoder must tell which is which. */
const envelopeLike = fc.record(
  {
    v: fc.oneof(fc.constant(1), junk),
    id: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 200 }), junk),
    ts: fc.oneof(fc.date({ min: new Date(0), max: new Date(253402300799000), noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('9999-12-31T23:59:59.000Z', 'yesterday', '2026-11-21T10:00:00+25:00'), junk),
    node: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), junk),
    type: fc.oneof(fc.constantFrom(...EVENT_TYPES), fc.string()),
    source: fc.oneof(fc.constant('kmsg'), junk),
    labels: fc.oneof(fc.dictionary(fc.string(), fc.string()), junk),
    data: fc.oneof(
      fc.record({ code: fc.oneof(fc.integer(), fc.double(), junk), message: fc.oneof(fc.string(), junk), pci: fc.oneof(fc.constant(null), fc.string()) }),
      fc.record({ state: fc.oneof(fc.constantFrom('serving', 'timeout'), fc.string()) }),
      fc.record({ count: fc.oneof(fc.integer(), fc.constant(null)), counters: fc.oneof(fc.dictionary(fc.string(), fc.integer()), junk) }),
      junk,
    ),
  },
  { requiredKeys: [] },
);
const rawMessage = fc.oneof(
  { weight: 3, arbitrary: envelopeLike.map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: junk.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
);

const RULE_PIECES = {
  id: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.string({ maxLength: 10 })),
  description: fc.string({ maxLength: 30 }),
  severity: fc.constantFrom('critical', 'warning', 'info', 'loud', 3),
  match: fc.oneof(
    fc.record({ type: fc.constantFrom(...EVENT_TYPES, 'gpu.xyz'), where: fc.dictionary(fc.constantFrom('data.code', 'data.message', 'labels.pool', 'node', 'data.gpu ?? data.pci', 'data.count / data.max', 'x..y'), fc.oneof(junk, fc.record({ regex: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('(a+)+$', '(a)\\1', '(?=x)', '[', '\\p{L}+')) }), fc.record({ in: fc.array(junk, { maxLength: 3 }) }), fc.record({ gte: junk }))) }),
    junk,
  ),
  scope: fc.oneof(fc.constantFrom('node', 'fleet', { group: 'pool' }, { node: true, by: ['data.gpu ?? data.pci'] }), junk),
  condition: fc.oneof(
    fc.record({ count: fc.record({ gte: fc.oneof(fc.integer({ min: -2, max: 10 }), junk), within: fc.oneof(fc.constantFrom('5m', '1h', '0', '-1m', '5 minutes', '999999999d'), junk) }) }),
    fc.record({ sustained: fc.record({ for: fc.constantFrom('1m', 'x'), while: junk }) }),
    fc.record({ absent: fc.record({ for: fc.constantFrom('2m', '') }) }),
    fc.record({ distinctNodes: fc.record({ gte: fc.integer({ min: 0, max: 5 }), gtePercent: fc.integer({ min: -10, max: 200 }), within: fc.constant('15m') }) }),
    junk,
  ),
  summary: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('{{count}} on {{scope}}', '{{nodename}}', '{{', '{{data.code}}')),
  actions: fc.oneof(fc.array(fc.record({ type: fc.constantFrom('page', 'cordon', 'rollback', 'reboot'), severity: fc.constantFrom('critical', 'x') }, { requiredKeys: ['type'] }), { maxLength: 2 }), junk),
  cooldown: fc.constantFrom('30m', 'soon'),
};

describe(`fuzz: engine inputs (${FUZZ_RUNS} cases each)`, function () {
  this.timeout(0);

  it('envelope decoder: valid or a PoisonInputError listing problems, never anything else', function () {
    fuzz('envelope', rawMessage, (text) => {
      let e;
      try {
        e = decodeEnvelope(text, 'fuzz');
      } catch (err) {
        expectPoison(() => {
          throw err;
        });
        return;
      }
      expect(envelopeProblems(e)).to.deep.equal([]);
    });
  });

  it('batch processor: every rejected message is a dead letter with a reason; the rest is evaluated', async function () {
    // Batches of up to 20 messages: a tenth of the cases, each a batch.
    const batches: RawMessage[][] = fc.sample(fc.array(rawMessage, { minLength: 1, maxLength: 20 }), { seed: 0x5eed_0006, numRuns: Math.max(20, Math.floor(FUZZ_RUNS / 10)) }).map((vals, b) =>
      vals.map((value, i) => ({ topic: 'signals', partition: 0, offset: String(b * 100 + i), key: 'k', value })),
    );
    const clock = new ManualClock(T0);
    const dead = new MemoryDeadLetterSink();
    let evaluated = 0;
    const processor = new BatchProcessor({
      engine: { process: (es) => ((evaluated += es.length), Promise.resolve<Decision[]>([])), tick: () => Promise.resolve([]) },
      remediator: { submit: (): Promise<SubmitResult> => Promise.resolve({ records: [], retryLater: [] }) },
      deduper: new MemoryDeduper(clock, { windowMs: 1, claimTtlMs: 1 }),
      deadLetters: dead,
      metrics: engineServiceMetrics(createRegistry('engine')),
      clock,
      logger: silentLogger,
    });
    for (const batch of batches) {
      dead.records.length = 0;
      evaluated = 0;
      clock.advance(1000);
      const res = await processor.process(batch);
      expect(res.invalid + res.processed + res.duplicates).to.equal(batch.length);
      expect(dead.records).to.have.length(res.invalid);
      for (const d of dead.records) {
        expect(d.reason).to.match(/^invalid event: .+/);
        expect(d.problems.length).to.be.greaterThan(0);
        expect(batch.some((m) => m.value === d.original)).to.equal(true);
      }
      expect(evaluated).to.equal(res.processed);
    }
  });

  it('rule compiler: arbitrary text is a RuleSet or a RULE_INVALID error listing problems', function () {
    const text = fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom('a: &a [*a]', 'rules: [', '{{', '--- !!binary x', 'rules:\n  - *x').chain((s) => fc.constant(s)));
    fuzz('ruleCompiler', text, (t) => expectPoison(() => parseRules(t, 'fuzz.yaml')));
  });

  it('rule compiler: rule-shaped documents with hostile fields', function () {
    const doc = fc.record({ apiVersion: fc.constantFrom('nodewarden.io/v1', 'v2'), kind: fc.constantFrom('RuleSet', 'x'), rules: fc.array(fc.record(RULE_PIECES, { requiredKeys: [] }), { maxLength: 3 }) }, { requiredKeys: ['rules'] });
    // Straight to the compiler (the YAML layer is the previous target's): documents as the YAML parser returns them.
    fuzz('ruleObjects', doc, (d) => {
      const problems: InputProblem[] = [];
      const rules = compileDocument(structuredClone(d), 'fuzz.yaml', problems);
      for (const p of problems) {
        expect(p.path).to.match(/^fuzz\.yaml#/);
        expect(p.message.length).to.be.greaterThan(0);
      }
      if (problems.length === 0) for (const r of rules) expect(r.id.length).to.be.greaterThan(0);
    });
  });

  it('control API request parsing: problems or a value, never a throw; values never carry control characters', function () {
    const body = fc.oneof(junk, fc.record({ reason: fc.oneof(fc.string({ maxLength: 50 }), fc.string({ unit: 'binary', maxLength: 1100 }), junk), ttl: fc.oneof(fc.constantFrom('1h', '0', '31d', '1h30m', '-1s'), fc.string({ maxLength: 8 }), junk) }, { requiredKeys: [] }), fc.constant(undefined));
    const query = fc.array(fc.tuple(fc.constantFrom('since', 'until', 'rule', 'node', 'outcome', 'limit', 'x'), fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('1h', '2026-11-21T10:00:00Z', 'denied', '1000', '1001', '0', 'n1\u001b[2J'))), { maxLength: 6 });
    fuzz('controlApi', fc.tuple(body, query), ([b, q]) => {
      for (const v of [validateToggleBody(b), validatePauseBody(b), validateResumeBody(b)]) {
        expect(v.value === undefined ? v.problems.length > 0 : v.problems.length === 0).to.equal(true);
        const reason = (v.value as { reason?: string | null } | undefined)?.reason;
        if (typeof reason === 'string') expect(controlCharProblem(reason)).to.equal(null);
      }
      const lq = validateLedgerQuery(new URLSearchParams(q), T0);
      expect(lq.value === undefined ? lq.problems.length > 0 : lq.problems.length === 0).to.equal(true);
      for (const k of ['rule', 'node'] as const) if (lq.value?.[k] !== undefined) expect(controlCharProblem(lq.value[k])).to.equal(null);
    });
  });
});
