/**
 * Fuzzing harness (issue 10, item 4): fast-check properties with a recorded
 * seed per target. The unit suite runs each target with a small number of
 * cases; `npm run test:fuzz` sets NODEWARDEN_FUZZ_RUNS=100000. A failure
 * prints the seed and path to replay it (fast-check's own report).
 *
 * Every property also checks "no hang" (each case under MAX_CASE_MS) and
 * "bounded memory" (heap growth over the whole run under MAX_HEAP_GROWTH_MIB).
 */
import fc from 'fast-check';

export const FUZZ_RUNS = Number(process.env.NODEWARDEN_FUZZ_RUNS ?? 1000);
const MAX_CASE_MS = 3000;
const MAX_HEAP_GROWTH_MIB = 256;

/** The recorded seeds: change one only together with RELIABILITY.md. */
export const SEEDS = {
  kernelLog: 0x5eed_0001,
  xidLines: 0x5eed_0002,
  dcgm: 0x5eed_0003,
  conntrack: 0x5eed_0004,
  envelope: 0x5eed_0005,
  deadLetters: 0x5eed_0006,
  ruleCompiler: 0x5eed_0007,
  ruleObjects: 0x5eed_0008,
  controlApi: 0x5eed_0009,
} as const;

export interface FuzzOutcome {
  name: string;
  runs: number;
  seed: number;
  ms: number;
  slowestCaseMs: number;
  heapGrowthMiB: number;
}

/** Runs `check` on `runs` values of `arb` with the target's seed; throws on the first failure. */
export function fuzz<T>(name: keyof typeof SEEDS, arb: fc.Arbitrary<T>, check: (v: T) => void, runs = FUZZ_RUNS): FuzzOutcome {
  const seed = SEEDS[name];
  let slowest = 0;
  // With --expose-gc (test/mocharc.fuzz.json) the growth is live memory, not garbage not yet collected.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  fc.assert(
    fc.property(arb, (v) => {
      const s = performance.now();
      check(v);
      const d = performance.now() - s;
      if (d > slowest) slowest = d;
      if (d > MAX_CASE_MS) throw new Error(`one case took ${Math.round(d)} ms (limit ${MAX_CASE_MS} ms): a hang`);
    }),
    { seed, numRuns: runs, endOnFailure: true },
  );
  const ms = performance.now() - t0;
  gc?.();
  const heapGrowthMiB = (process.memoryUsage().heapUsed - heap0) / 1048576;
  if (heapGrowthMiB > MAX_HEAP_GROWTH_MIB) throw new Error(`heap grew by ${heapGrowthMiB.toFixed(0)} MiB over ${runs} cases`);
  const out = { name, runs, seed, ms: Math.round(ms), slowestCaseMs: Math.round(slowest * 10) / 10, heapGrowthMiB: Math.round(heapGrowthMiB) };
  if (process.env.NODEWARDEN_FUZZ_REPORT) process.stdout.write(`      fuzz ${JSON.stringify(out)}\n`);
  return out;
}

/** Text that looks like what a target reads, with noise: fragments of the grammar mixed with arbitrary strings. */
export function textFrom(pieces: readonly string[], maxLines = 8): fc.Arbitrary<string> {
  const noise = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', ' ', '\t', '\r', '\u0000', '\u001b[2J', 'é', '🚑'));
  const piece = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...pieces) }, { weight: 2, arbitrary: noise }, { weight: 1, arbitrary: fc.nat({ max: 1e6 }).map(String) });
  const line = fc.array(piece, { maxLength: 8 }).map((ps) => ps.join(''));
  return fc.array(line, { maxLength: maxLines }).map((ls) => ls.join('\n'));
}
