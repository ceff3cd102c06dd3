/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time per
 * function and per area of the code (kafkajs, ioredis, the rule engine, the
 * store, envelope validation, GC, idle...), so a benchmark can say where the
 * time goes without a GUI.
 *
 *   node dist/bench/lib/cpuprofile.js FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Buckets by URL/function name; first match wins. */
const AREAS: ReadonlyArray<[string, (url: string, fn: string) => boolean]> = [
  ['idle', (_u, f) => f === '(idle)'],
  ['garbage collector', (_u, f) => f === '(garbage collector)'],
  ['kafkajs', (u) => u.includes('/node_modules/kafkajs/')],
  ['ioredis', (u) => u.includes('/node_modules/ioredis/') || u.includes('/node_modules/redis-parser/') || u.includes('/node_modules/denque/')],
  ['pino (logging)', (u) => u.includes('/node_modules/pino') || u.includes('/node_modules/sonic-boom/')],
  ['prom-client', (u) => u.includes('/node_modules/prom-client/')],
  ['rules engine', (u) => u.includes('/dist/rules/engine/') || u.includes('/dist/rules/language/')],
  ['state store', (u) => u.includes('/dist/rules/store/')],
  ['engine service (batch, dedupe)', (u) => u.includes('/dist/rules/service/')],
  ['envelope decode/validate', (u) => u.includes('/dist/core/envelope')],
  ['kubernetes client / cluster model', (u) => u.includes('/node_modules/@kubernetes/') || u.includes('/dist/remediations/simulated/') || u.includes('/dist/remediations/kube/')],
  ['yaml', (u) => u.includes('/node_modules/yaml/')],
  ['remediations (guard, ledger)', (u) => u.includes('/dist/remediations/')],
  ['other nodewarden', (u) => u.includes('/dist/')],
  ['other node_modules', (u) => u.includes('/node_modules/')],
  ['node internals', (u) => u.startsWith('node:')],
  ['native/builtins (JSON, Buffer, ...)', (u) => u === ''],
];

export interface ProfileSummary {
  totalMs: number;
  areas: Array<{ area: string; ms: number; pct: number }>;
  functions: Array<{ fn: string; where: string; ms: number; pct: number }>;
}

/**
 * `window` (ms since the profile started) keeps only the samples taken in it,
 * e.g. the consuming phase without the process's start-up.
 */
export function summarizeProfile(p: CpuProfile, top = 25, window?: { fromMs: number; toMs: number }): ProfileSummary {
  const self = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t / 1000 < window.fromMs || t / 1000 > window.toMs)) continue;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const areas = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const area = AREAS.find(([, test]) => test(url, fn))?.[0] ?? 'other';
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = url ? `${url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}` : '';
    const k = `${fn} ${where}`;
    const f = fns.get(k) ?? { fn, where, us: 0 };
    f.us += us;
    fns.set(k, f);
  }
  const pct = (us: number): number => (total === 0 ? 0 : (us / total) * 100);
  return {
    totalMs: total / 1000,
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: us / 1000, pct: pct(us) })),
    functions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ fn: f.fn, where: f.where, ms: f.us / 1000, pct: pct(f.us) })),
  };
}

export function formatProfile(s: ProfileSummary, excludeIdle = true): string {
  const busy = excludeIdle ? s.areas.filter((a) => a.area !== 'idle') : s.areas;
  const busyMs = busy.reduce((x, a) => x + a.ms, 0);
  const lines = [`profile: ${s.totalMs.toFixed(0)} ms sampled, ${busyMs.toFixed(0)} ms busy`, '  self time by area (% of busy time):'];
  for (const a of busy) lines.push(`    ${((a.ms / busyMs) * 100).toFixed(1).padStart(5)}%  ${a.ms.toFixed(0).padStart(7)} ms  ${a.area}`);
  lines.push('  top functions by self time (% of busy time):');
  for (const f of s.functions.filter((x) => x.fn !== '(idle)')) lines.push(`    ${((f.ms / busyMs) * 100).toFixed(1).padStart(5)}%  ${f.fn}  ${f.where}`);
  return lines.join('\n');
}

export function summarizeProfileFile(file: string, top = 25, window?: { fromMs: number; toMs: number }): ProfileSummary {
  return summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top, window);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: cpuprofile FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(formatProfile(summarizeProfileFile(file, Number(process.argv[3] ?? 25))) + '\n');
}
