/**
 * Where a fault enters the repair ladder: NVIDIA's immediate action for the
 * Xid, read from the catalogue shipped with the pack (rules/pack/xid-catalogue.yaml),
 * with Xid 154's recovery action decoded from its text. Pure.
 */
import type { Decision } from '../../core/decision.js';
import { isRecord } from '../../core/records.js';
import type { XidCatalogue } from '../../rules/xid/catalogue.js';
import { parseRecoveryAction } from '../../rules/xid/recovery.js';
import type { Rung } from './ladder.js';
import { rungForNvidiaAction } from './ladder.js';

/** The Xid a decision's evidence names (the engine copies it from the event that fired the rule). */
export interface XidEvidence {
  code: number | null;
  message: string;
  gpu: string | null;
}

export function xidOf(d: Decision): XidEvidence | null {
  const x = d.evidence?.xid;
  if (!isRecord(x)) return null;
  const code = typeof x.code === 'number' && Number.isInteger(x.code) ? x.code : null;
  const message = typeof x.message === 'string' ? x.message : '';
  const gpu = typeof x.gpu === 'string' && x.gpu !== '' ? x.gpu : null;
  if (code === null && message === '') return null;
  return { code, message, gpu };
}

/** The rung a fault starts at, and why; null: the catalogue recommends no repair for it. */
export function startRung(cat: XidCatalogue | undefined, x: XidEvidence): { rung: Rung; nvidia: string } | null {
  if (!cat) return null;
  // a catalogue message that matches wins, as in classifyXid (the fallen-off-the-bus text)
  let nvidia = cat.messages.find((m) => new RegExp(m.pattern).test(x.message))?.nvidia;
  nvidia ??= x.code === null ? undefined : cat.entries.get(x.code)?.nvidia;
  if (nvidia === undefined) return null;
  const rung = rungForNvidiaAction(nvidia, nvidia === 'XID_154' ? (parseRecoveryAction(x.message)?.action ?? null) : null);
  return rung === null ? null : { rung, nvidia };
}
