// Flat config: typescript-eslint's type-aware recommended set over all TS sources.
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Modules that do I/O (files, sockets, brokers, clusters, metrics and log sinks).
const IO_MODULES = [
  'fs', 'fs/*', 'node:fs', 'node:fs/*', 'net', 'node:net', 'http', 'node:http', 'https', 'node:https', 'http2', 'node:http2',
  'child_process', 'node:child_process', 'dgram', 'node:dgram', 'tls', 'node:tls',
  'kafkajs', 'ioredis', '@kubernetes/client-node', 'axios', 'prom-client', 'pino', '@grpc/*', 'node-cron',
];
const PURE_FILES = [
  'core/**/*.ts', 'rules/language/**/*.ts', 'rules/engine/**/*.ts', 'rules/xid/**/*.ts', 'agent/parsers/**/*.ts', 'agent/bounds.ts',
  'adapters/redis/keys.ts', 'remediations/guard/policy.ts', 'remediations/guard/gpu-budget.ts', 'remediations/incidents/incident.ts',
  'remediations/pager/pager.ts', 'remediations/webhooks/signatures.ts', 'remediations/kube/device-taint-view.ts',
  'remediations/ladder/ladder.ts', 'remediations/ladder/start.ts', 'remediations/ladder/job-template.ts', 'remediations/ladder/outcomes.ts',
];
// Loaders and sinks that still sit in a pure folder (each is the one reader of its files).
const PURE_EXCEPTIONS = ['rules/language/load.ts'];

// PURE_FILES as regular expressions over repository-relative paths (`**/` any folders, `*` one name).
const globRe = (g) =>
  new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '\0').replace(/\*/g, '[^/]*').replace(/\0/g, '(?:.*/)?')}$`);
const PURE_RES = PURE_FILES.map(globRe);
const EXCEPTION_RES = PURE_EXCEPTIONS.map(globRe);
const isPure = (rel) => PURE_RES.some((r) => r.test(rel)) && !EXCEPTION_RES.some((r) => r.test(rel));

/*
 * The I/O ban made transitive: a pure file may load (import a value from,
 * re-export, or import dynamically) only other pure files, so no I/O module
 * reaches it through a local helper (agent/parsers once read files through
 * agent/bounds.ts). Type-only imports are erased at build time and allowed.
 */
const pureImportsPure = {
  meta: { type: 'problem', schema: [] },
  create(context) {
    const dir = path.dirname(context.filename);
    const check = (node, source, typeOnly) => {
      if (typeOnly || typeof source !== 'string') return;
      if (!source.startsWith('.')) {
        // Static imports of I/O modules are no-restricted-imports' (below); this catches import('…').
        if (node.type === 'ImportExpression' && IO_MODULES.some((m) => globRe(m).test(source))) {
          context.report({ node, message: `I/O module ${source} loaded by a pure file: put it behind a port in an adapter (docs/architecture.md, "Pure folders").` });
        }
        return;
      }
      const rel = path.relative(import.meta.dirname, path.resolve(dir, source)).split(path.sep).join('/').replace(/\.js$/, '.ts');
      if (!isPure(rel)) {
        context.report({ node, message: `pure file loads ${rel}, which is not in the pure list: move the I/O out of it or import only its types (docs/architecture.md, "Pure folders").` });
      }
    };
    const allTypes = (n) => n.specifiers.length > 0 && n.specifiers.every((sp) => sp.importKind === 'type' || sp.exportKind === 'type');
    return {
      ImportDeclaration: (n) => check(n, n.source.value, n.importKind === 'type' || allTypes(n)),
      ExportNamedDeclaration: (n) => n.source && check(n, n.source.value, n.exportKind === 'type' || allTypes(n)),
      ExportAllDeclaration: (n) => check(n, n.source.value, n.exportKind === 'type'),
      ImportExpression: (n) => n.source.type === 'Literal' && check(n, n.source.value, false),
    };
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'deploy/**', 'docs/**', '**/*.js', '!eslint.config.js', '!control/console/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  // Pure folders: types, parsing and decisions only. I/O lives in adapters
  // (adapters/, the *-store/*-guard/*-sink files, cli/, control/, jobs/, agent/collectors).
  // docs/architecture.md ("Pure folders") lists the folders and why.
  {
    files: PURE_FILES,
    ignores: PURE_EXCEPTIONS,
    plugins: { nodewarden: { rules: { 'pure-imports-pure': pureImportsPure } } },
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: IO_MODULES, message: 'I/O module in a pure folder: put it behind a port in an adapter (docs/architecture.md, "Pure folders").' }] }],
      'nodewarden/pure-imports-pure': 'error',
    },
  },
  // The agent's memory budget (ADR 0004, 0010): no heavy clients, nothing of the engine.
  // agent/parsers/ is covered by the pure-folder rule above (which bans these too).
  {
    files: ['agent/**/*.ts'],
    ignores: ['agent/parsers/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@kubernetes/client-node', '@grpc/*', 'axios', 'ajv', 'ioredis'], message: 'Too heavy for the agent\'s memory budget: see ADR 0016 (agent/kube-api.ts, agent/collectors/grpc-unary.ts).' },
            { group: ['prom-client', 'pino', 'pino-*', '**/adapters/metrics.js', '**/adapters/logger.js'], message: 'The agent uses agent/metrics.ts and agent/json-logger.ts, not prom-client or pino (memory budget, ADR 0039).' },
            { group: ['kafkajs', 'kafkajs/*'], message: 'The agent publishes through agent/publisher/kafka-wire, not kafkajs (memory budget, ADR 0040).' },
            { group: ['**/rules/**', '**/remediations/**', '**/control/**', '**/jobs/**', '**/demo/**'], message: 'The agent must not load the engine, remediations or control plane (memory budget, ADR 0016).' },
          ],
        },
      ],
    },
  },
  {
    // This file: plain JavaScript run by ESLint itself (it holds the local pure-imports-pure rule, whose AST nodes are untyped).
    files: ['eslint.config.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The console's browser script: plain JavaScript shipped as is (no build step), linted without types.
    files: ['control/console/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['window', 'document', 'sessionStorage', 'fetch', 'URLSearchParams', 'Node', 'setTimeout', 'clearTimeout', 'console'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
