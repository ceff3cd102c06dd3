import { expect } from 'chai';
import { dedupeClaimPrefix, dedupeKey, guardKeys, jobKeys, ledgerSeenKey, ledgerStreamKey, pagingKeys, StoreKeys, toggleKeys, watermarkKey } from '../../../adapters/redis/keys.js';

/**
 * Every Redis key family with one example (prefix `nw:`, the default). Keys are
 * data other replicas and earlier versions wrote: a change to this list is a
 * change of the storage format and needs a migration note.
 */
describe('adapters/redis/keys: the Redis key registry', () => {
  const p = 'nw:';
  const s = new StoreKeys(p);
  const g = guardKeys(p);
  const t = toggleKeys(p);
  const pg = pagingKeys(p);
  const j = jobKeys(p);
  const families: [string, string, string][] = [
    // rule state (rules/store, rules/engine)
    ['rules: count leaf', s.leaf('w', 'gpu-xid', 0, 'node=n1'), 'nw:rs:w:gpu-xid:0:node=n1'],
    ['rules: distinct leaf', s.leaf('d', 'gpu-xid', 1, 'pool=a'), 'nw:rs:d:gpu-xid:1:pool=a'],
    ['rules: counter series leaf', s.leaf('cs', 'r', 2, 'x'), 'nw:rs:cs:r:2:x'],
    ['rules: sustained leaf', s.leaf('s', 'r', 0, 'x'), 'nw:rs:s:r:0:x'],
    ['rules: sequence leaf', s.leaf('q', 'r', 0, 'x'), 'nw:rs:q:r:0:x'],
    ['rules: sustained index', s.sustainedIndex('r', 0), 'nw:rs:si:r:0'],
    ['rules: seen index (absent)', s.seenIndex('r', 0), 'nw:rs:a:r:0'],
    ['rules: episode', s.episode('r', 'node=n1'), 'nw:rs:e:r:node=n1'],
    ['rules: episode index', s.episodeIndex('r'), 'nw:rs:ei:r'],
    ['rules: tick outbox', s.tickOutbox(), 'nw:rs:to'],
    ['rules: workload change', s.workloadChange({ kind: 'DaemonSet', namespace: 'gpu-operator', name: 'driver' }), 'nw:rs:wl:DaemonSet:gpu-operator:driver'],
    ['rules: group seen', s.groupSeen('pool', 'a'), 'nw:rs:gs:pool:a'],
    ['rules: partition-local state', s.partitionState('g', 't', 3), 'nw:rs:pl:g:t:3'],
    ['rules: partition-local op log', s.partitionLog('g', 't', 3), 'nw:rs:plog:g:t:3'],
    ['rules: partition owner epoch', s.partitionEpoch('g', 't', 3), 'nw:rs:pe:g:t:3'],
    // event dedupe, watermarks (rules/service)
    ['dedupe', dedupeKey(p, 'ev-1'), 'nw:dedupe2:id:ev-1'],
    ['dedupe claim', `${dedupeClaimPrefix(p)}tok`, 'nw:dedupe2:claim:tok'],
    ['watermarks', watermarkKey(p, 'engine', 'nodewarden.events'), 'nw:engine:watermarks:engine:nodewarden.events'],
    // rule toggles (rules/toggles)
    ['toggles: hash', t.hash, 'nw:toggles'],
    ['toggles: channel', t.channel, 'nw:toggles:changed'],
    // blast-radius guard (remediations/guard)
    ['guard: base', g.base, 'nw:{guard}:'],
    ['guard: paused', g.paused, 'nw:{guard}:paused'],
    ['guard: decision', g.decision('d-1'), 'nw:{guard}:decision:d-1'],
    ['guard: breaker', g.breaker('cordon'), 'nw:{guard}:breaker:cordon'],
    ['guard: breaker failures', g.breakerFailures('cordon'), 'nw:{guard}:breaker:cordon:failures'],
    ['guard: cooldown', g.cooldown('cordon', 'Node/n1'), 'nw:{guard}:cooldown:cordon:Node/n1'],
    ['guard: rate', g.rate('cordon'), 'nw:{guard}:rate:cordon'],
    ['guard: rollback', g.rollback('DaemonSet/ns/x'), 'nw:{guard}:rollback:DaemonSet/ns/x'],
    ['guard: rollback away', g.rollbackAway('DaemonSet/ns/x'), 'nw:{guard}:rollback:DaemonSet/ns/x:away'],
    ['guard: reservations', g.reservations, 'nw:{guard}:reservations'],
    ['guard: gpu taints', g.gpuTaints, 'nw:{guard}:gpu-taints'],
    // paging documents (remediations/incidents)
    ['paging: base', pg.base, 'nw:{paging}:'],
    ['paging: doc', pg.doc('incidents', 'k'), 'nw:{paging}:incidents:doc:k'],
    ['paging: index', pg.index('incidents'), 'nw:{paging}:incidents:ids'],
    ['paging: claim', pg.claim('incidents', 'k'), 'nw:{paging}:incidents:seen:k'],
    // ledger stream (remediations/ledger, toggle audits, control reader, jobs trim)
    ['ledger: stream', ledgerStreamKey(p), 'nw:ledger'],
    ['ledger: seen', ledgerSeenKey(p, 'd-1#1'), 'nw:ledger:seen:d-1#1'],
    // scheduled jobs (jobs/)
    ['jobs: running', j.running('digest'), 'nw:jobs:running:digest'],
    ['jobs: slot', j.slot('digest', 60_000), 'nw:jobs:slot:digest:60000'],
    ['jobs: state', j.state('digest'), 'nw:jobs:state:digest'],
  ];

  for (const [family, got, want] of families) {
    it(`${family}: ${want}`, () => expect(got).to.equal(want));
  }

  it('every key starts with the configured prefix', () => {
    const q = 'test-1:';
    const all = [new StoreKeys(q).tickOutbox(), dedupeKey(q, 'e'), `${dedupeClaimPrefix(q)}t`, watermarkKey(q, 'g', 't'), toggleKeys(q).hash, guardKeys(q).paused, pagingKeys(q).index('n'), ledgerStreamKey(q), jobKeys(q).state('x')];
    expect(all.filter((k) => !k.startsWith(q))).to.deep.equal([]);
  });
});
