/**
 * One schema per input (ADR 0037): the TypeScript type is derived from the
 * schema (`Infer`), the validator reads own keys only, and the config accepts
 * exactly the durations the one duration parser reads.
 */
import { expect } from 'chai';
import { CONFIG_SCHEMA, DEFAULT_CONFIG, deepMerge, resolveConfig } from '../../../core/config.js';
import type { NodewardenConfig } from '../../../core/config.js';
import { DURATION_PATTERN, isDuration, parseDuration } from '../../../core/duration.js';
import { PoisonInputError } from '../../../core/errors.js';
import { strictObject, validateSchema } from '../../../core/schema.js';
import type { Infer } from '../../../core/schema.js';

/** Compile-time equality: `true` only when A and B are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(ok: Same<A, B>): Same<A, B> => ok;

function configProblems(text: string): string[] {
  try {
    resolveConfig({ text, file: 'nodewarden.yaml' });
  } catch (err) {
    expect(err).to.be.instanceOf(PoisonInputError);
    const e = err as PoisonInputError;
    expect(e.message, 'one line, no stack').to.not.include('\n');
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('schemas and derived types', () => {
  it('Infer derives the type of a schema: required and optional keys, unions, enums, arrays, maps', () => {
    const s = strictObject(
      {
        name: { type: 'string' },
        port: { type: 'integer' },
        mode: { enum: ['job', 'annotation'] },
        file: { type: ['string', 'null'] },
        list: { type: 'array', items: { type: 'string' } },
        limits: { type: 'object', additionalProperties: strictObject({ count: { type: 'integer' } }) },
        nested: { anyOf: [{ type: 'null' }, strictObject({ on: { type: 'boolean' } })] },
      },
      ['name', 'port'],
    );
    expect(
      same<
        Infer<typeof s>,
        {
          name: string;
          port: number;
          mode?: 'job' | 'annotation';
          file?: string | null;
          list?: string[];
          limits?: Record<string, { count: number }>;
          nested?: { on: boolean } | null;
        }
      >(true),
    ).to.equal(true);
    expect(validateSchema(s, { name: 'a', port: 1, mode: 'job', limits: { x: { count: 1 } } })).to.deep.equal([]);
    expect(validateSchema(s, { name: 'a' })).to.deep.equal([{ path: '/port', message: 'is required' }]);
  });

  it('the config type is the config schema’s: the defaults satisfy both', () => {
    expect(same<NodewardenConfig, Infer<typeof CONFIG_SCHEMA>>(true)).to.equal(true);
    expect(same<NodewardenConfig['pager']['slackApi'], { url?: string; channel: string; tokenFile?: string | null; tokenEnv?: string; minIntervalMs?: number; approvals?: boolean } | null>(true)).to.equal(true);
    expect(same<NodewardenConfig['engine']['rulesPath'], string | string[] | null>(true)).to.equal(true);
    expect(validateSchema(CONFIG_SCHEMA, DEFAULT_CONFIG)).to.deep.equal([]);
  });

  it('a key every object inherits (constructor, toString, __proto__) is an unknown setting, never accepted', () => {
    // Before: `constructor` and `toString` passed (the validator looked them up
    // on the properties object's prototype), `__proto__` replaced a prototype.
    expect(configProblems('constructor: 1\n')).to.deep.equal(['/constructor: unknown setting']);
    expect(configProblems('labels:\n  toString: x\n')).to.deep.equal(['/labels/toString: unknown setting']);
    expect(configProblems('__proto__:\n  labels: {group: 1}\n')).to.deep.equal(['/__proto__: is not allowed (a prototype key)']);
    expect(configProblems('guard:\n  __proto__: {dryRun: 5}\n')).to.deep.equal(['/guard/__proto__: is not allowed (a prototype key)']);
    expect(configProblems('guard:\n  rateLimits:\n    __proto__: {count: 1, per: 1m}\n')).to.deep.equal(['/guard/rateLimits/__proto__: is not allowed (a prototype key)']);
  });

  it('a label name every object inherits is refused where labels are looked up (labels, incidents.groupBy)', () => {
    // Before: accepted; `groupBy: [constructor]` grouped incidents under Object's constructor.
    expect(configProblems('labels:\n  group: constructor\nincidents:\n  groupBy: [rule, toString]\n')).to.deep.equal([
      '/labels/group: "constructor" is a name every object inherits, not a label name',
      '/incidents/groupBy/1: "toString" is a name every object inherits, not a label name',
    ]);
  });

  it('a required key is present only as an own key', () => {
    const s = strictObject({ constructor: { type: 'string' } });
    expect(validateSchema(s, {})).to.deep.equal([{ path: '/constructor', message: 'is required' }]);
  });

  it('deepMerge keeps `__proto__` a key and never changes a prototype', () => {
    const over = JSON.parse('{"guard": {"__proto__": {"dryRun": true}}}') as unknown;
    const merged = deepMerge(structuredClone(DEFAULT_CONFIG), over);
    expect(Object.getPrototypeOf(merged.guard)).to.equal(Object.prototype);
    expect(Object.hasOwn(merged.guard, '__proto__')).to.equal(true);
    expect(merged.guard.dryRun).to.equal(false);
  });
});

describe('one duration grammar', () => {
  const durationSchema = { type: 'string', pattern: DURATION_PATTERN } as const;
  const texts = ['0', '0s', '250ms', '15m', '1h30m', '1.5h', '7d', '2h0m5s', '', '00', '15', 'm', '1w', '-1s', '1 h', '1h 30m', '.5s', '1.s', '1e3s', 'Infinitys', '15M', '1hh', '0x10s'];
  it('the config schema accepts exactly what parseDuration reads', () => {
    for (const t of texts) {
      const schemaOk = validateSchema(durationSchema, t).length === 0;
      expect(isDuration(t), t).to.equal(schemaOk);
      if (schemaOk) expect(parseDuration(t), t).to.be.a('number').and.to.be.at.least(0);
      else expect(() => parseDuration(t), t).to.throw(/duration/);
    }
  });
  it('parses compound and fractional durations', () => {
    expect(parseDuration('2h0m5s')).to.equal(7_205_000);
    expect(parseDuration(' 15m ')).to.equal(900_000);
    expect(parseDuration('0.5ms')).to.equal(1);
  });
});
