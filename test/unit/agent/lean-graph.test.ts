/**
 * The agent's memory budget (ADR 0016, 0039): walks the import graph of the
 * compiled `nodewarden agent` command (dist, static imports, literal
 * `import()` and `require()`) and fails if a heavy module is reachable —
 * prom-client and pino (the agent has agent/metrics.ts and
 * agent/json-logger.ts), kafkajs (agent/publisher/kafka-wire, ADR 0040), the
 * Kubernetes and gRPC clients, or the engine — and that the yaml package is
 * not loaded at start-up (ADR 0043: only a config that is not JSON loads it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, '..', '..', '..');
const ENTRY = path.join(DIST, 'cli', 'commands', 'agent.js');

const FORBIDDEN_PACKAGES = ['kafkajs', 'prom-client', 'pino', '@opentelemetry/api', '@kubernetes/client-node', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'ioredis', 'axios', 'ajv'];
const FORBIDDEN_FILES = ['adapters/metrics.js', 'adapters/logger.js'];
const FORBIDDEN_DIRS = ['rules/', 'remediations/', 'control/', 'jobs/', 'demo/', 'engine/'];

const SPECIFIERS = [/(?:^|[\s;}])(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g, /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g];

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec);
}

/** The first two: static `import … from` / `export … from` and bare `import '…'`, loaded when the importing module is. */
const STATIC_SPECIFIERS = SPECIFIERS.slice(0, 2);

/** Files of dist reachable from `entry`, and the packages (and node: builtins) they load; `staticOnly`: through static imports only. */
function agentGraph(entry: string, staticOnly = false): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (files.has(f)) continue;
    files.add(f);
    const src = fs.readFileSync(f, 'utf8');
    for (const re of staticOnly ? STATIC_SPECIFIERS : SPECIFIERS)
      for (const m of src.matchAll(re)) {
        const spec = m[1] ?? '';
        if (spec.startsWith('.')) todo.push(path.resolve(path.dirname(f), spec));
        else packages.add(packageName(spec));
      }
  }
  return { files, packages };
}

describe('agent: lean import graph (memory budget, ADR 0039)', () => {
  const { files, packages } = agentGraph(ENTRY);
  const rel = [...files].map((f) => path.relative(DIST, f).split(path.sep).join('/'));

  it('walks the real graph (sanity: the agent, its publisher and its Kafka client are in it)', () => {
    expect(rel).to.include.members(['cli/commands/agent.js', 'agent/agent.js', 'agent/metrics.js', 'agent/json-logger.js', 'agent/publisher/kafka-producer.js', 'agent/publisher/kafka-wire/idempotent-producer.js']);
    expect([...packages]).to.include('node:net');
  });

  it('loads neither kafkajs, prom-client, pino, nor the heavy clients', () => {
    expect([...packages].filter((p) => FORBIDDEN_PACKAGES.includes(p) || p.startsWith('pino-'))).to.deep.equal([]);
  });

  it('loads neither the engine adapters for metrics and logs nor the engine, remediations or control plane', () => {
    expect(rel.filter((f) => FORBIDDEN_FILES.includes(f) || FORBIDDEN_DIRS.some((d) => f.startsWith(d)))).to.deep.equal([]);
  });

  it('does not load the yaml package at start-up: no static import of it (ADR 0043)', () => {
    const atStart = agentGraph(ENTRY, true);
    expect([...atStart.packages]).to.not.include('yaml');
    // sanity: the config reader is loaded at start-up
    expect([...atStart.files].map((f) => path.relative(DIST, f).split(path.sep).join('/'))).to.include.members(['core/yaml.js', 'core/config.js']);
  });

  it('the walker finds static, dynamic and require() specifiers', () => {
    const dir = fs.mkdtempSync(path.join(DIST, '..', 'lean-graph-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.js'), "import x from 'pkg-a';\nexport { y } from './b.js';\nconst m = await import('@scope/pkg-b/sub');\n");
      fs.writeFileSync(path.join(dir, 'b.js'), "import './c.js';\nconst r = require('pkg-c');\nexport const y = 1;\n");
      fs.writeFileSync(path.join(dir, 'c.js'), "import { z } from \"pkg-d\";\n");
      const g = agentGraph(path.join(dir, 'a.js'));
      expect([...g.packages].sort()).to.deep.equal(['@scope/pkg-b', 'pkg-a', 'pkg-c', 'pkg-d']);
      expect(g.files.size).to.equal(3);
      expect([...agentGraph(path.join(dir, 'a.js'), true).packages].sort()).to.deep.equal(['pkg-a', 'pkg-d']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
