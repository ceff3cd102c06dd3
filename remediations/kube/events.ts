/**
 * Kubernetes Events nodewarden writes next to each action, so `kubectl
 * describe node` shows who cordoned a node and why. The name is derived from
 * the decision id: a replayed decision re-creates the same Event, which the
 * server rejects as AlreadyExists instead of duplicating it.
 */
import { createHash } from 'node:crypto';
import type { Decision } from '../../core/decision.js';
import type { KubeObject, WireEvent } from './wire.js';

export const REPORTING_COMPONENT = 'nodewarden';
const MAX_MESSAGE = 1024;

export interface EventSpec {
  /** What the event is about. Node → namespace `default`, as kubelet does. */
  object: KubeObject;
  decision: Decision;
  reason: string;
  type: 'Normal' | 'Warning';
  message: string;
  /** Short verb, e.g. `Cordon`, `Uncordon`, `Rollback`. */
  action: string;
  now: number;
  /** reportingInstance: which engine replica acted. */
  instance: string;
}

/** DNS-1123 friendly, stable per (object, decision, reason). */
export function eventName(objectName: string, decisionId: string, reason: string): string {
  const h = createHash('sha256').update(`${decisionId}\u0000${reason}`).digest('hex').slice(0, 16);
  const base = objectName.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 200);
  return `${base}.nw-${h}`;
}

export function buildEvent(spec: EventSpec): WireEvent {
  const o = spec.object;
  const name = o.metadata?.name ?? spec.decision.target.name;
  const objNamespace = o.metadata?.namespace;
  const ts = new Date(spec.now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const message = spec.message.length <= MAX_MESSAGE ? spec.message : `${spec.message.slice(0, MAX_MESSAGE - 1)}…`;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: eventName(name, spec.decision.id, spec.reason), namespace: objNamespace ?? 'default' },
    involvedObject: {
      apiVersion: o.apiVersion ?? (o.kind === 'Node' ? 'v1' : 'apps/v1'),
      kind: o.kind ?? spec.decision.target.kind,
      name,
      ...(objNamespace === undefined ? {} : { namespace: objNamespace }),
      ...(o.metadata?.uid === undefined ? {} : { uid: o.metadata.uid }),
    },
    reason: spec.reason,
    message,
    type: spec.type,
    source: { component: REPORTING_COMPONENT },
    reportingComponent: REPORTING_COMPONENT,
    reportingInstance: spec.instance,
    action: spec.action,
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
  };
}
