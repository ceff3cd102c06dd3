import { expect } from 'chai';
import { bearerToken, parseTokens } from '../../../control/tokens.js';
import { PoisonInputError } from '../../../core/errors.js';

const ADMIN = 'adm1n-t0ken-0123456789abcdef';
const READER = 'read0nly-t0ken-0123456789abcd';

describe('control: tokens file', () => {
  it('parses `token role name` lines with comments and blank lines', () => {
    const t = parseTokens(`# tokens\n\n${ADMIN} admin alice\n  ${READER}\tread-only   grafana  # dashboards\n`, 'tokens');
    expect(t.size).to.equal(2);
    expect(t.lookup(ADMIN)).to.deep.equal({ name: 'alice', role: 'admin' });
    expect(t.lookup(READER)).to.deep.equal({ name: 'grafana', role: 'read-only' });
    expect(t.lookup('nope')).to.equal(null);
    expect(t.lookup(ADMIN.slice(0, -1))).to.equal(null);
    expect(t.lookup(ADMIN + 'x')).to.equal(null);
    expect(t.lookup('')).to.equal(null);
  });

  it('reports every bad line with its number', () => {
    let err: unknown;
    try {
      parseTokens(`short admin a\n${ADMIN} root b\n${READER} admin\n${ADMIN} admin b\n`, 'tokens.txt');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PoisonInputError);
    expect((err as PoisonInputError).problems).to.deep.equal([
      { path: 'line 1', message: 'token must be at least 16 characters' },
      { path: 'line 2', message: 'unknown role "root" (expected admin or read-only)' },
      { path: 'line 3', message: 'expected "token role name", got 2 field(s)' },
      { path: 'line 4', message: 'duplicate name "b"' },
    ]);
  });

  it('compares equal-length digests with every entry, never stopping at the first match', () => {
    const calls: Array<[number, number]> = [];
    const equal = (a: Buffer, b: Buffer): boolean => {
      calls.push([a.length, b.length]);
      return a.equals(b);
    };
    const t = parseTokens(`${ADMIN} admin a\n${READER} read-only b\n${'z'.repeat(40)} admin c\n`, 'tokens', equal);
    expect(t.lookup(ADMIN)).to.deep.equal({ name: 'a', role: 'admin' });
    expect(calls).to.deep.equal([[32, 32], [32, 32], [32, 32]]);
    calls.length = 0;
    expect(t.lookup('x')).to.equal(null);
    expect(calls).to.have.length(3);
  });

  it('extracts bearer tokens only', () => {
    expect(bearerToken('Bearer abc')).to.equal('abc');
    expect(bearerToken('bearer   abc ')).to.equal('abc');
    expect(bearerToken('Basic abc')).to.equal(null);
    expect(bearerToken('Bearer')).to.equal(null);
    expect(bearerToken(undefined)).to.equal(null);
  });
});
