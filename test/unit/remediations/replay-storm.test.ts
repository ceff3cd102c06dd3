/**
 * Issue acceptance, end to end through the real CLI: `nodewarden replay`
 * applies actions to the `--cluster` snapshot, so the guard sees its own
 * effects and every unavailable node whoever cordoned it. A storm of Xid 79
 * on 20 of 100 nodes cordons at most 5 (5 %) and pages once about the rest;
 * with 3 nodes already cordoned by people it cordons at most 2.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import type { LedgerRecord } from '../../../core/decision.js';

const exec = promisify(execFile);
const FLEET = 'test/fixtures/cluster/fleet-100.yaml';
const HUMAN_CORDONED = ['gpu-node-007', 'gpu-node-052', 'gpu-node-091'];

interface Item {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { unschedulable?: boolean; taints?: unknown[] };
}

function stormEvents(nodes: string[], start: number): string {
  return nodes
    .map((node, i) =>
      JSON.stringify({
        v: 1,
        id: `storm-${String(i).padStart(3, '0')}`,
        ts: new Date(start + i * 6_000).toISOString(),
        node,
        type: 'gpu.xid',
        source: 'kmsg',
        labels: { pool: 'h100-train', zone: 'us-west-2a' },
        data: { code: 79, pci: '0000:3b:00', gpu: null, pid: null, process: null, message: 'GPU has fallen off the bus.' },
      }),
    )
    .join('\n');
}

async function replay(cluster: string, events: string): Promise<LedgerRecord[]> {
  const { stdout } = await exec('./bin/nodewarden', ['replay', '--cluster', cluster, events], { maxBuffer: 32 * 1024 * 1024 });
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LedgerRecord);
}

describe('replay: a storm of Xid 79 against the blast-radius guard (real CLI, simulated cluster)', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'nw-storm-'));
  // 20 storm victims, none of them the human-cordoned ones; 4h after the fixture's
  // driver rollout, so only the per-node rule is in play.
  const victims = Array.from({ length: 24 }, (_, i) => `gpu-node-${String(i).padStart(3, '0')}`).filter((n) => !HUMAN_CORDONED.includes(n)).slice(0, 20);
  const eventsFile = join(dir, 'storm.jsonl');
  writeFileSync(eventsFile, stormEvents(victims, Date.parse('2026-11-21T14:00:00Z')));

  function cordons(ledger: LedgerRecord[]): { executed: LedgerRecord[]; denied: LedgerRecord[] } {
    const c = ledger.filter((r) => r.action === 'cordon');
    return { executed: c.filter((r) => r.outcome === 'executed'), denied: c.filter((r) => r.outcome === 'denied') };
  }

  function denialPages(ledger: LedgerRecord[]): LedgerRecord[] {
    return ledger.filter((r) => r.action === 'page' && r.outcome === 'executed' && /denied|guard/i.test(`${r.reason} ${r.dedupKey ?? ''}`));
  }

  it('with no node unavailable: cordons at most 5 of 100, denies the rest, and pages once about them', async () => {
    const fleet = parse(readFileSync(FLEET, 'utf8')) as { items: Item[] };
    for (const item of fleet.items)
      if (item.kind === 'Node' && HUMAN_CORDONED.includes(item.metadata.name)) {
        delete item.spec?.unschedulable;
        if (item.spec) item.spec.taints = [];
      }
    const clean = join(dir, 'fleet-100-clean.yaml');
    writeFileSync(clean, stringify(fleet));
    const ledger = await replay(clean, eventsFile);
    const { executed, denied } = cordons(ledger);
    expect(executed.length).to.be.at.most(5).and.at.least(1);
    expect(executed.length + denied.length).to.equal(20);
    for (const d of denied) expect(d.guard).to.be.a('string');
    expect(new Set(executed.map((r) => r.target.name)).size).to.equal(executed.length);
    const pages = denialPages(ledger);
    expect(pages, JSON.stringify(ledger.filter((r) => r.action === 'page').map((r) => [r.reason, r.dedupKey]))).to.have.length(1);
    // Every denied node is named to a human: in the page, or (once the page is
    // out) in a suppressed follow-up record of the same group in the ledger.
    // (with incidents, the follow-ups join the incident the first page updated: same dedupKey)
    const followUps = ledger.filter((r) => r.action === 'page' && r.outcome === 'suppressed' && (r.guard === 'denialPageOpen' || (r.guard === 'incidentOpen' && r.reason.startsWith('guard '))));
    expect(followUps.every((r) => r.dedupKey === pages[0]?.dedupKey)).to.equal(true);
    const named = JSON.stringify([pages[0], ...followUps]);
    for (const d of denied) expect(named).to.include(d.target.name);
  });

  it('with 3 nodes cordoned by people: cordons at most 2, never touches the human cordons', async () => {
    const ledger = await replay(FLEET, eventsFile);
    const { executed, denied } = cordons(ledger);
    expect(executed.length).to.be.at.most(2).and.at.least(1);
    expect(executed.length + denied.length).to.equal(20);
    expect(denied.map((r) => r.guard)).to.include('maxUnavailable');
    expect(ledger.filter((r) => r.action === 'uncordon')).to.have.length(0);
    expect(ledger.some((r) => HUMAN_CORDONED.includes(r.target.name))).to.equal(false);
    // one incident: later denials reach humans as updates of it (same dedupKey), never as new pages
    const pages = denialPages(ledger);
    expect(pages.length).to.be.at.least(1);
    expect(new Set(pages.map((r) => r.dedupKey))).to.deep.equal(new Set(['nodewarden/incident/gpu-xid-fatal/pool=h100-train']));
    const triggers = ledger.filter((r) => r.action === 'page' && r.outcome === 'executed' && (r.details?.incident as { event?: string } | undefined)?.event === 'trigger');
    expect(triggers).to.have.length(1);
  });

  it('prints the same ledger on every run', async () => {
    const a = await exec('./bin/nodewarden', ['replay', '--cluster', FLEET, eventsFile]);
    const b = await exec('./bin/nodewarden', ['replay', '--cluster', FLEET, eventsFile]);
    expect(a.stdout.length).to.be.greaterThan(0);
    expect(b.stdout).to.equal(a.stdout);
  });
});
