/**
 * core/yaml.ts reads a text that is plain JSON with JSON.parse and loads the yaml
 * package only for a text that is not (ADR 0043). These tests pin that the JSON
 * path gives exactly what the yaml package gives — same values, same problems —
 * and that a JSON text never loads the package.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { parseYamlDocuments, YAML_MAX_ALIAS_COUNT } from '../../../core/yaml.js';
import type { InputProblem } from '../../../core/errors.js';
import { packageRoot } from '../../../adapters/paths.js';

/** What parseYamlDocuments returned before ADR 0043: the yaml package on every text. */
function viaYamlPackage(text: string): { docs: unknown[]; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  const list = parseAllDocuments(text, { prettyErrors: true });
  const docs: unknown[] = [];
  (Array.isArray(list) ? list : [list]).forEach((d, i, all) => {
    const path = all.length > 1 ? `/${i}` : '/';
    if (d.errors.length > 0) {
      for (const e of d.errors) problems.push({ path, message: `YAML: ${e.message.split(/\r?\n/)[0]!.trim()}` });
      return;
    }
    try {
      const js: unknown = d.toJS({ maxAliasCount: YAML_MAX_ALIAS_COUNT });
      if (js !== null && js !== undefined) docs.push(js);
    } catch (err) {
      problems.push({ path, message: `YAML: ${(err as Error).message.split(/\r?\n/)[0]!.trim()} (at most ${YAML_MAX_ALIAS_COUNT} alias expansions)` });
    }
  });
  return { docs, problems };
}

function parsed(text: string): { docs: unknown[]; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  const docs = parseYamlDocuments(text, problems);
  return { docs, problems };
}

/** JSON text of `v` with random JSON whitespace (space, tab, LF, CRLF) around every token. */
function jsonWithBlanks(v: unknown, blank: () => string): string {
  if (Array.isArray(v)) return `[${blank()}${v.map((x) => `${jsonWithBlanks(x, blank)}${blank()}`).join(`,${blank()}`)}]`;
  if (v !== null && typeof v === 'object')
    return `{${blank()}${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}${blank()}:${blank()}${jsonWithBlanks(x, blank)}${blank()}`)
      .join(`,${blank()}`)}}`;
  return JSON.stringify(v);
}

describe('core/yaml: JSON texts take JSON.parse, with the yaml package\'s result (ADR 0043)', () => {
  it('any JSON value, compact, pretty or with random blanks: the same documents as the yaml package', () => {
    const blanks = fc.array(fc.constantFrom('', ' ', '\t', '\n', '\r\n', '  \n\t'), { minLength: 64, maxLength: 64 });
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), blanks, fc.nat(), (value, ws, seed) => {
        let i = seed;
        const blank = () => ws[i++ % ws.length] ?? '';
        for (const text of [JSON.stringify(value), JSON.stringify(value, null, 2), jsonWithBlanks(value, blank)]) {
          const want = viaYamlPackage(text);
          expect(want.problems, text).to.deep.equal([]);
          expect(parsed(text), text).to.deep.equal(want);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('any string (escapes, surrogates, control and YAML indicator characters) as key and value', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (k, v) => {
        const text = JSON.stringify({ [k]: v, list: [v, k] });
        expect(parsed(text)).to.deep.equal(viaYamlPackage(text));
      }),
      { numRuns: 400 },
    );
  });

  it('table: edge cases of numbers, keys and blanks agree with the yaml package', () => {
    const table = [
      '-0',
      '[-0, 0, 1e999, -1e999, 1E5, 0.1e-2, 12345678901234567890, 5e-324]',
      '{"<<": {"a": 1}, "b": 2}',
      '{"__proto__": {"polluted": 1}, "constructor": 2}',
      '"\\u2028\\/\\b\\f\\ud83d\\ude00\\ud800"',
      '{"a:b": "c\\":d", "e\\\\": ":"}',
      '{"a b": "x: y # z", "#c": "&d *e !f", "-": "? |"}',
      '\t{\t"a"\t:\t[\t1\t,\t2\t]\t}\t',
      '{"a":\n\t1}',
      '[\n{"a": 1},\n{"b":\n2}\n]',
      `{"${'k'.repeat(2000)}": "${'v'.repeat(2000)}"}`,
      '{}',
      '[]',
      'true',
      '"a"',
      '{"a": {}, "b": [{}], "c": [[], {"d": null}]}',
    ];
    for (const text of table) {
      const want = viaYamlPackage(text);
      expect(want.problems, text).to.deep.equal([]);
      expect(parsed(text), text).to.deep.equal(want);
    }
  });

  it('a repeated key (JSON.parse would keep the last) is the yaml package\'s error, wherever it is', () => {
    for (const text of ['{"a": 1, "a": 2}', '[{"x": {"b": 1, "c": 2, "b": 3}}]', '{"a": {"k": 1}, "b": {"k": 1, "k": 1}}']) {
      const got = parsed(text);
      expect(got, text).to.deep.equal(viaYamlPackage(text));
      expect(got.problems[0]?.message, text).to.match(/^YAML: Map keys must be unique/);
    }
    // the same key in different objects is not repeated
    expect(parsed('[{"a": 1}, {"a": 2}]').docs).to.deep.equal([[{ a: 1 }, { a: 2 }]]);
  });

  it('null (and an empty or blank text) is no document; a scalar is one', () => {
    for (const text of ['null', ' null\n', '', '  \n']) expect(parsed(text), JSON.stringify(text)).to.deep.equal({ docs: [], problems: [] });
    expect(parsed('42').docs).to.deep.equal([42]);
  });

  it('deeper than 100 levels is left to the yaml package (its result, as before)', () => {
    for (const depth of [100, 101, 150]) {
      const text = '['.repeat(depth) + ']'.repeat(depth);
      expect(parsed(text), `depth ${depth}`).to.deep.equal(viaYamlPackage(text));
    }
    // far too deep: one problem line, not a stack overflow thrown at the caller
    const got = parsed('{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000));
    expect(got.docs).to.deep.equal([]);
    expect(got.problems).to.have.length.greaterThan(0);
  });

  it('malformed JSON is read as YAML: flow-style YAML still loads, broken text is a one-line YAML problem', () => {
    expect(parsed('{kafka: {brokers: [a:9092]}}').docs).to.deep.equal([{ kafka: { brokers: ['a:9092'] } }]);
    for (const text of ['{"kafka": {"brokers": ["a:1"]}', '{"kafka" {"brokers": 1}}', '{"a": 1}}']) {
      const got = parsed(text);
      expect(got, text).to.deep.equal(viaYamlPackage(text));
      expect(got.problems, text).to.have.length.greaterThan(0);
      for (const p of got.problems) expect(p.message, text).to.match(/^YAML: [^\n]+$/);
    }
  });

  it('the size bound holds for a JSON text too', () => {
    const problems: InputProblem[] = [];
    expect(parseYamlDocuments(JSON.stringify({ a: 'x'.repeat(100) }), problems, { maxBytes: 50 })).to.deep.equal([]);
    expect(problems[0]?.message).to.match(/the limit is 50/);
  });

  it('a JSON text does not load the yaml package; a YAML text does (fresh process)', function () {
    this.timeout(20_000);
    const dir = mkdtempSync(join(tmpdir(), 'nw-yaml-lazy-'));
    const json = join(dir, 'c.json');
    const yaml = join(dir, 'c.yaml');
    writeFileSync(json, JSON.stringify({ kafka: { brokers: ['k:9092'] }, agent: { http: { port: 9101 } } }));
    writeFileSync(yaml, 'kafka:\n  brokers: [k:9092]\nagent:\n  http: { port: 9101 }\n');
    const configFile = pathToFileURL(join(packageRoot(), 'dist', 'adapters', 'config-file.js')).href;
    const script = `
      import { createRequire } from 'node:module';
      const { loadConfig } = await import(${JSON.stringify(configFile)});
      const yamlLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/yaml/'));
      const a = loadConfig({ file: process.argv[1], env: {} });
      const afterJson = yamlLoaded();
      const b = loadConfig({ file: process.argv[2], env: {} });
      console.log(JSON.stringify({ afterJson, afterYaml: yamlLoaded(), same: JSON.stringify(a) === JSON.stringify(b) }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, json, yaml], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({ afterJson: false, afterYaml: true, same: true });
  });
});
