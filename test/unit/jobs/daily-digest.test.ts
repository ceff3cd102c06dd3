import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { MemoryLogger } from '../../../core/logger.js';
import type { LedgerEntry } from '../../../remediations/ledger/entry.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { buildDigest, dailyDigestJob, localTime, renderDigest } from '../../../jobs/daily-digest.js';
import type { Digest } from '../../../jobs/daily-digest.js';
import type { SlackMessage } from '../../../remediations/pager/slack.js';
import { slackRequestValidator } from '../../receivers/contract.js';
import { FakeCluster } from '../remediations/fake-cluster.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const LEDGER: LedgerEntry[] = readFileSync(join(ROOT, 'test', 'fixtures', 'jobs', 'digest-ledger.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as LedgerEntry);
const TO = Date.parse('2026-11-21T09:00:00Z');
const FROM = TO - 24 * 3_600_000;

function fleet(): FakeCluster {
  const view = FakeCluster.fleet(100, ['h100-train'], 'gpu-node');
  view.cordon('gpu-node-042', true);
  view.cordon('gpu-node-007', true);
  view.nodes.delete('gpu-node-051');
  return view;
}

function allText(m: SlackMessage): string {
  return m.blocks.map((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => (e.type === 'button' ? e.text.text : e.text))].join('\n')).join('\n');
}

describe('jobs: daily digest builder', () => {
  let d: Digest;
  before(() => {
    d = buildDigest(LEDGER, { from: FROM, to: TO, timezone: 'UTC', view: fleet() });
  });

  it('counts only the window, decisions apart from toggle audits', () => {
    expect(d.day).to.equal('2026-11-21');
    expect(d.decisions).to.equal(19);
    expect(d.toggleChanges).to.equal(2);
    expect(d.suppressed).to.equal(1);
  });

  it('counts actions taken by kind, failed and dry-run apart', () => {
    expect(d.executed).to.deep.equal({ cordon: 4, page: 6, resolve: 1, uncordon: 1, rollback: 1 });
    expect(d.failed).to.deep.equal({ page: 1 });
    expect(d.dryRun).to.deep.equal({ cordon: 1 });
  });

  it('counts denials by guard, most first', () => {
    expect(d.denied).to.deep.equal([
      { guard: 'maxUnavailable', count: 2 },
      { guard: 'rateLimit', count: 1 },
    ]);
  });

  it('ranks the top rules by pages then decisions (suppressed duplicates not counted), at most five', () => {
    expect(d.topRules.map((r) => [r.rule, r.pages, r.count, r.suppressed])).to.deep.equal([
      ['gpu-xid-fatal', 3, 10, 1],
      ['containerd-unresponsive', 1, 4, 0],
      ['gpu-driver-rollout-regression', 1, 2, 0],
      ['kubeproxy-restart-loop', 1, 2, 0],
    ]);
    expect(d.quietedRules.map((r) => [r.rule, r.suppressed, r.silenced])).to.deep.equal([['gpu-xid-fatal', 1, 0]]);
  });

  it('lists nodes cordoned in the window with whether they are still cordoned now', () => {
    expect(d.cordoned.map((c) => [c.node, c.rule, c.stillCordoned])).to.deep.equal([
      ['gpu-node-042', 'gpu-xid-fatal', true],
      ['gpu-node-007', 'gpu-xid-fatal', true],
      ['gpu-node-013', 'containerd-unresponsive', false],
      ['gpu-node-051', 'gpu-xid-fatal', null],
    ]);
  });

  it('renders a Block Kit message the Slack webhook contract accepts, with every section', () => {
    const m = renderDigest(d);
    const validate = slackRequestValidator();
    expect(validate(m), JSON.stringify(validate.errors)).to.equal(true);
    expect(m.blocks[0]).to.deep.equal({ type: 'header', text: { type: 'plain_text', text: 'nodewarden daily digest · 2026-11-21' } });
    const text = allText(m);
    expect(text).to.include('*19* decisions from 2026-11-20 09:00 to 2026-11-21 09:00 (UTC)');
    expect(text).to.include('*Actions taken*\n• cordon: *4*\n• uncordon: *1*\n• rollback: *1*\n• page: *6*\n• resolve: *1*');
    expect(text).to.include('failed: page: *1*');
    expect(text).to.include('*Denied by the guard* (3)\n• maxUnavailable: *2*\n• rateLimit: *1*');
    expect(text).to.include('*Top rules* (pages · decisions)\n1. `gpu-xid-fatal`: 3 · 10\n2. `containerd-unresponsive`: 1 · 4');
    expect(text).to.include('*Most held back* (suppressed · silenced)\n1. `gpu-xid-fatal`: 1 · 0');
    expect(text).to.include('• `gpu-node-013`: uncordoned by nodewarden since');
    expect(text).not.to.include('*Incidents*'); // no incident store given
    expect(text).to.include('*Nodes cordoned*: 4, *still cordoned*: 2');
    expect(text).to.include('• `gpu-node-042`: *still cordoned* (by `gpu-xid-fatal` at 2026-11-20 10:15)');
    expect(text).to.include('• `gpu-node-051`: no longer in the cluster');
    expect(m.text).to.equal('nodewarden daily digest 2026-11-21: 4 cordon, 1 uncordon, 1 rollback, 6 page, 1 resolve executed; 3 denied by the guard; 4 nodes cordoned, 2 still cordoned');
  });

  it('shows local times and the local date in the configured time zone', () => {
    const tokyo = buildDigest(LEDGER, { from: FROM, to: TO, timezone: 'Asia/Tokyo', view: fleet() });
    expect(tokyo.day).to.equal('2026-11-21');
    expect(localTime(TO, 'Asia/Tokyo')).to.equal('2026-11-21 18:00');
    expect(localTime(TO, 'America/Los_Angeles')).to.equal('2026-11-21 01:00');
    expect(allText(renderDigest(tokyo))).to.include('(Asia/Tokyo)');
  });

  it('stays within Block Kit limits for a huge day', () => {
    const many: LedgerEntry[] = [];
    for (let i = 0; i < 400; i++)
      many.push({ ts: new Date(FROM + 1000 + i).toISOString(), rule: `rule-${i % 40}-${'x'.repeat(60)}`, action: 'cordon', target: { kind: 'Node', name: `node-${i}` }, outcome: 'executed', reason: 'r', guard: null });
    const m = renderDigest(buildDigest(many, { from: FROM, to: TO, timezone: 'UTC', view: new FakeCluster() }));
    const validate = slackRequestValidator();
    expect(validate(m), JSON.stringify(validate.errors)).to.equal(true);
    expect(allText(m)).to.match(/…and \d+ more/);
    expect(allText(m)).to.include('*Nodes cordoned*: 400, *still cordoned*: 0');
  });

  it('says so plainly on a quiet day', () => {
    const m = renderDigest(buildDigest([], { from: FROM, to: TO, timezone: 'UTC', view: fleet() }));
    expect(allText(m)).to.include('• none: every action stayed within its budget');
    expect(allText(m)).to.include('no rule fired');
    expect(m.text).to.include('no action executed');
  });
});

describe('jobs: daily digest job', () => {
  it('reads the window ending at the run from the ledger and sends one message', async () => {
    const ledger = new MemoryLedger();
    await ledger.append(LEDGER);
    const sent: SlackMessage[] = [];
    const job = dailyDigestJob({ ledger, view: fleet(), sender: { send: (m) => (sent.push(m), Promise.resolve()) }, timezone: 'UTC', windowMs: 24 * 3_600_000 });
    const summary = await job.run({ signal: new AbortController().signal, now: TO, scheduledAt: TO, logger: new MemoryLogger() });
    expect(summary).to.deep.equal({ decisions: 19, cordoned: 4, stillCordoned: 2 });
    expect(sent).to.have.length(1);
    expect(sent[0]?.text).to.include('4 nodes cordoned, 2 still cordoned');
  });
});
