/**
 * How many PagerDuty incidents the demo's driver storm raises (issue 12):
 * the demo storyline (seed 7, speed 60, amplify 400, as `npm start`) in
 * virtual time with a recording pager; counts triggers (trigger + updates)
 * and distinct dedup keys (= PagerDuty incidents) from the storm's start to
 * five minutes after its last node.
 *
 *   node dist/bench/demo-incidents.js [--group-by rule,pool] [--no-incidents]
 *
 * --no-incidents: `incidents.enabled: false`, the behaviour before incidents.
 */
import { loadConfig } from '../adapters/config-file.js';
import { silentLogger } from '../core/logger.js';
import { createRegistry } from '../adapters/metrics.js';
import { defaultRulesPath, loadRules } from '../rules/language/load.js';
import { createDemoSystem, defaultStoryline } from '../demo/system.js';
import { createRecordingPager } from '../remediations/pager/recording-pager.js';

const gi = process.argv.indexOf('--group-by');
const groupBy = gi > 0 ? process.argv[gi + 1]?.split(',') : undefined;
const T0 = Date.parse('2026-03-01T00:00:00Z');
const speed = 60;
const story = defaultStoryline(speed);
const pager = createRecordingPager('count');
const sys = createDemoSystem({
  config: loadConfig({ flags: { 'incidents.groupBy': groupBy, 'incidents.enabled': process.argv.includes('--no-incidents') ? false : undefined } }),
  rules: loadRules(defaultRulesPath()),
  seed: 7,
  amplification: 400,
  start: T0,
  storyline: story,
  registry: createRegistry('bench'),
  logger: silentLogger,
  denialWindowMs: Math.max(30_000, 3000 * speed),
  pagers: [pager],
});
await sys.advance(T0 + story.stormAfterMs + 30 * 60_000);
await sys.close();
const from = T0 + story.stormAfterMs;
const to = from + story.stormNodes * story.stormSpacingMs + 5 * 60_000;
const sends = pager.sent.filter((p) => p.event === 'trigger' && p.timestamp !== undefined && Date.parse(p.timestamp) >= from && Date.parse(p.timestamp) <= to);
const perIncident: Record<string, number> = {};
for (const p of sends) perIncident[p.dedupKey] = (perIncident[p.dedupKey] ?? 0) + 1;
process.stdout.write(`${JSON.stringify({ stormNodes: story.stormNodes, pagesSent: sends.length, incidents: Object.keys(perIncident).length, perIncident }, null, 1)}\n`);
