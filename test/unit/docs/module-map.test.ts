/**
 * docs/architecture.md's module map is the map of the tree as it is: every
 * top-level folder and each of its subfolders has a line, and every folder a
 * line names exists (issue 9).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
/** Build output, dependencies and local state: not modules. */
const NOT_MODULES = new Set(['node_modules', 'dist', 'coverage']);

function folders(dir: string): string[] {
  return fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !NOT_MODULES.has(e.name))
    .map((e) => (dir ? `${dir}/${e.name}` : e.name))
    .sort();
}

/** The `## Module map` section of docs/architecture.md. */
function moduleMap(): string {
  const doc = fs.readFileSync(path.join(root, 'docs', 'architecture.md'), 'utf8');
  const start = doc.indexOf('## Module map');
  expect(start, 'docs/architecture.md has a "## Module map" section').to.be.greaterThan(-1);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end === -1 ? undefined : end);
}

describe('docs/architecture.md module map', () => {
  const top = folders('');
  const tree = top.flatMap((t) => [t, ...folders(t)]);
  const map = moduleMap();
  const named = [...map.matchAll(/`([a-z][\w.-]*(?:\/[\w.-]+)*)\/`/g)].map((m) => m[1]!).filter((p) => top.includes(p.split('/')[0]!));

  it('names every top-level folder and each of its subfolders', () => {
    expect(tree.length, 'the tree was read').to.be.greaterThan(20);
    expect(tree.filter((f) => !named.includes(f)), 'folders missing from the module map').to.deep.equal([]);
  });

  it('names no folder that is not in the tree', () => {
    expect(named.filter((p) => !fs.existsSync(path.join(root, p)) || !fs.statSync(path.join(root, p)).isDirectory()), 'folders of the map not in the tree').to.deep.equal([]);
  });
});
