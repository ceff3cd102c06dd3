/**
 * A rule that joins another rule's incident (`incident:`, ADR 0020/0029): its
 * FIRST page is news and goes out at once as an update; its later members wait
 * for the next update like the owner's. A storm of 50 nodes of the joining rule
 * (gpu-xid-node-fatal joins gpu-xid-fatal's incident) is one trigger and one
 * update, not one update per node.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import type { Decision } from '../../../core/decision.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import { createIncidentPaging } from '../../../remediations/incidents/incident-paging.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');

function page(rule: string, node: string): Decision {
  return { id: `p-${rule}-${node}`, at: T0, rule, incident: 'gpu-xid-fatal', action: 'page', target: { kind: 'Node', name: node }, reason: `${rule} on ${node}`, severity: 'critical', group: { pool: 'h100' } };
}

describe('incident paging: a joining rule', () => {
  it('sends its first page at once, and only its first: later members of that rule wait for the next update', async () => {
    const clock = new ManualClock(T0);
    const paging = createIncidentPaging({ store: new MemoryDocStore(clock), clock, options: { groupWaitMs: 0 } });
    // as the remediator does: each send is settled once the pager delivered it
    const route = async (d: Decision): Promise<string> => {
      const r = await paging.route(d);
      if (r.kind === 'send') await paging.settleSend(r.dedupKey, r.seq, true);
      return r.kind;
    };
    expect(await route(page('gpu-xid-fatal', 'n-0'))).to.equal('send');
    const kinds: string[] = [];
    for (let i = 1; i <= 50; i++) kinds.push(await route(page('gpu-xid-node-fatal', `n-${i}`)));
    expect(kinds[0], "the joining rule's first page").to.equal('send');
    expect(kinds.slice(1).filter((k) => k === 'send'), 'later members of the joining rule sent at once').to.deep.equal([]);
  });
});
