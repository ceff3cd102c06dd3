import { expect } from 'chai';
import { formatDuration, isDuration, parseDuration } from '../../../core/duration.js';
import { UlidFactory } from '../../../core/ids.js';
import { ManualClock } from '../../../core/clock.js';
import { validateSchema } from '../../../core/schema.js';

describe('durations', () => {
  it('parses simple and compound durations', () => {
    expect(parseDuration('250ms')).to.equal(250);
    expect(parseDuration('60s')).to.equal(60_000);
    expect(parseDuration('15m')).to.equal(900_000);
    expect(parseDuration('1h30m')).to.equal(5_400_000);
    expect(parseDuration('1.5h')).to.equal(5_400_000);
    expect(parseDuration('0')).to.equal(0);
    expect(formatDuration(900_000)).to.equal('15m');
  });
  it('rejects what is not a duration', () => {
    for (const bad of ['', '15', 'm', '10 minutes', '-1s', '1w']) {
      expect(isDuration(bad), bad).to.equal(false);
      expect(() => parseDuration(bad), bad).to.throw(/duration/);
    }
  });
});

describe('ids and clocks', () => {
  it('ULIDs are unique and sort by time, also within one millisecond', () => {
    const f = new UlidFactory();
    const ids = [f.next(1000), f.next(1000), f.next(1000), f.next(2000), f.next(1500)];
    expect(new Set(ids).size).to.equal(5);
    expect([...ids].sort()).to.deep.equal(ids);
    expect(ids[0]).to.match(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });
  it('a manual clock never goes backwards', () => {
    const c = new ManualClock(100);
    c.set(50);
    expect(c.now()).to.equal(100);
    c.advance(5);
    c.set(200);
    expect(c.now()).to.equal(200);
  });
});

describe('schema subset validator', () => {
  const schema = {
    type: 'object',
    additionalProperties: false,
    required: ['a'],
    properties: {
      a: { type: 'integer', minimum: 1 },
      b: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, required: ['c'], properties: { c: { type: 'string', minLength: 1 } } }] },
      e: { enum: ['x', 'y'] },
      l: { type: 'array', items: { type: 'string', pattern: '^[a-z]+$' } },
    },
  } as const;
  it('accepts valid values', () => {
    expect(validateSchema(schema, { a: 1, b: null, e: 'x', l: ['ab'] })).to.deep.equal([]);
    expect(validateSchema(schema, { a: 2, b: { c: 'z' } })).to.deep.equal([]);
  });
  it('reports each problem at its path, explaining anyOf against the branch meant for the value', () => {
    const problems = validateSchema(schema, { a: 0.5, b: { c: '' }, e: 'z', l: ['ok', 'NO'], zz: 1 });
    expect(problems).to.deep.include({ path: '/a', message: 'must be integer' });
    expect(problems).to.deep.include({ path: '/b/c', message: 'must have at least 1 character(s)' });
    expect(problems).to.deep.include({ path: '/e', message: 'must be one of "x", "y"' });
    expect(problems).to.deep.include({ path: '/l/1', message: 'must match ^[a-z]+$' });
    expect(problems).to.deep.include({ path: '/zz', message: 'unknown setting' });
    expect(validateSchema(schema, {})).to.deep.equal([{ path: '/a', message: 'is required' }]);
  });
});
