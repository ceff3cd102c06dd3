/**
 * Every kafkajs client the test process creates — by a test, the harness or
 * product code run in-process (EngineService, KafkaLedger, the agent's
 * producer) — registered with the test that created it and followed through
 * its events, so that the global teardown can name, before the shared broker
 * stops, each client still connected or about to reconnect (ADR 0038).
 *
 * Without this a leaked client shows up only after the broker is gone, as a
 * kafkajs retry timer (`() => retry(nextRetryTime, retryCount + 1)`) that
 * keeps the process alive, and only when it happens to be retrying then. The
 * case it was written for: a consumer that crashed while its owner was
 * disconnecting it. kafkajs disconnects a crashed consumer itself, then
 * schedules a restart; a `disconnect()` that ran meanwhile returned (and
 * emitted DISCONNECT) before the restart was scheduled, so the consumer comes
 * back after its owner stopped it (CRASH with `restart: true` after DISCONNECT).
 *
 * Installed by loading this module (test/integration/_hooks.ts does):
 * `Kafka.prototype.consumer/producer/admin` are wrapped once per process.
 */
import { Kafka } from 'kafkajs';
import { currentPhase } from './leak-check.js';

type Kind = 'consumer' | 'producer' | 'admin';
type State = 'created' | 'connecting' | 'connected' | 'disconnected' | 'connect failed' | 'restarting';

interface TrackedClient {
  kind: Kind;
  id: number;
  groupId: string | undefined;
  createdDuring: string;
  state: State;
  /** When its owner called disconnect() last (the test then running). */
  disconnectCalled: string | undefined;
  /** Set when kafkajs scheduled a restart after the owner's disconnect() had been called. */
  restartedAfterDisconnect: string | undefined;
  /** The last few events, oldest first, for the report. */
  events: string[];
}

interface EventfulClient {
  events: Record<string, string>;
  on(event: string, listener: (e: { payload?: Record<string, unknown> }) => void): unknown;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

const clients: TrackedClient[] = [];
let nextId = 1;
const MAX_EVENTS = 12;

function note(c: TrackedClient, what: string): void {
  c.events.push(what);
  if (c.events.length > MAX_EVENTS) c.events.shift();
}

function errorName(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message.slice(0, 120)}`;
  return String(e).slice(0, 120);
}

/** Follows one client: its connect()/disconnect() calls and its lifecycle events. */
export function trackKafkaClient(kind: Kind, client: EventfulClient, groupId?: string): void {
  const c: TrackedClient = {
    kind,
    id: nextId++,
    groupId,
    createdDuring: currentPhase(),
    state: 'created',
    disconnectCalled: undefined,
    restartedAfterDisconnect: undefined,
    events: [],
  };
  clients.push(c);
  const connect = client.connect.bind(client);
  const disconnect = client.disconnect.bind(client);
  client.connect = async () => {
    c.state = 'connecting';
    note(c, 'connect()');
    try {
      await connect();
    } catch (err) {
      if (c.state === 'connecting') c.state = 'connect failed';
      note(c, `connect() failed: ${errorName(err)}`);
      throw err;
    }
  };
  client.disconnect = async () => {
    c.disconnectCalled = currentPhase();
    note(c, 'disconnect()');
    await disconnect();
  };
  const ev = client.events;
  const on = (name: string | undefined, f: (payload: Record<string, unknown>) => void): void => {
    if (name !== undefined) client.on(name, (e) => f(e.payload ?? {}));
  };
  on(ev['CONNECT'], () => {
    c.state = 'connected';
    note(c, 'CONNECT');
  });
  on(ev['DISCONNECT'], () => {
    c.state = 'disconnected';
    note(c, 'DISCONNECT');
  });
  on(ev['STOP'], () => note(c, 'STOP'));
  on(ev['GROUP_JOIN'], () => {
    // a restarted consumer joins again without a CONNECT — possibly after its owner's disconnect()
    if (c.state === 'disconnected') c.restartedAfterDisconnect = `joined the group again ${currentPhase()}`;
    c.state = 'connected';
    note(c, `GROUP_JOIN during ${currentPhase()}`);
  });
  const text = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '?');
  on(ev['REQUEST_TIMEOUT'], (p) => note(c, `REQUEST_TIMEOUT ${text(p['apiName'])} to ${text(p['broker'])}`));
  on(ev['CRASH'], (p) => {
    const restart = p['restart'] === true;
    note(c, `CRASH restart=${String(restart)} (${errorName(p['error'])}) during ${currentPhase()}`);
    if (!restart) return;
    c.state = 'restarting';
    if (c.disconnectCalled !== undefined) c.restartedAfterDisconnect = currentPhase();
  });
}

/** The clients still connected, connecting, or about to reconnect, each named with the test that created it. */
export function openKafkaClients(): string[] {
  const out: string[] = [];
  for (const c of clients) {
    const restartAfterStop = c.restartedAfterDisconnect !== undefined;
    if (c.state !== 'connecting' && c.state !== 'connected' && c.state !== 'restarting') continue;
    out.push(
      `kafkajs ${c.kind} #${c.id}${c.groupId ? ` (group ${c.groupId})` : ''} ${c.state}` +
        (restartAfterStop ? ` — kafkajs restarted it after its disconnect() (called ${c.disconnectCalled ?? '?'}), ${c.restartedAfterDisconnect ?? '?'}` : '') +
        (!restartAfterStop && c.disconnectCalled !== undefined ? ` (disconnect() was called ${c.disconnectCalled})` : '') +
        `; created ${c.createdDuring}; last events: ${c.events.join(' → ') || '(none)'}`,
    );
  }
  return out;
}

const INSTALLED = Symbol.for('nodewarden.kafka-clients.installed');

function install(): void {
  const proto = Kafka.prototype as unknown as Record<string | symbol, unknown>;
  if (proto[INSTALLED]) return;
  proto[INSTALLED] = true;
  for (const kind of ['consumer', 'producer', 'admin'] as const) {
    const original = proto[kind] as (this: Kafka, config?: { groupId?: string }) => EventfulClient;
    proto[kind] = function (this: Kafka, config?: { groupId?: string }): EventfulClient {
      const client = original.call(this, config);
      trackKafkaClient(kind, client, config?.groupId);
      return client;
    };
  }
}

install();
