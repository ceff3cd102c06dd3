/**
 * The kafkajs client tracker of the integration hooks (ADR 0038): a client
 * still live at the teardown, or a consumer kafkajs restarted after its
 * disconnect(), is reported with the test that created it; a disconnected
 * one, or one whose connect failed, is not. Fake clients with kafkajs's
 * event names stand in for real ones (no broker in unit tests).
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { openKafkaClients, trackKafkaClient } from '../../harness/kafka-clients.js';

const EVENTS = { CONNECT: 'consumer.connect', DISCONNECT: 'consumer.disconnect', CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' };

class FakeClient extends EventEmitter {
  readonly events = EVENTS;
  failConnect = false;
  override on(event: string, listener: (e: { payload?: Record<string, unknown> }) => void): this {
    return super.on(event, listener);
  }
  connect(): Promise<void> {
    if (this.failConnect) return Promise.reject(new Error('ECONNREFUSED'));
    this.emit(EVENTS.CONNECT, { payload: {} });
    return Promise.resolve();
  }
  disconnect(): Promise<void> {
    this.emit(EVENTS.DISCONNECT, { payload: {} });
    return Promise.resolve();
  }
  crash(restart: boolean): void {
    this.emit(EVENTS.CRASH, { payload: { error: new Error('Connection error'), restart } });
  }
}

let n = 0;
function tracked(): { client: FakeClient; group: string; open: () => string | undefined } {
  const client = new FakeClient();
  const group = `tracker-test-${process.pid}-${n++}`;
  trackKafkaClient('consumer', client, group);
  return { client, group, open: () => openKafkaClients().find((line) => line.includes(`(group ${group})`)) };
}

describe('integration kafkajs client tracker', () => {
  it('reports a connected client with the test that created it, not once disconnected', async function () {
    const { client, open } = tracked();
    await client.connect();
    expect(open()).to.include('connected').and.to.include(this.test?.title ?? '?');
    await client.disconnect();
    expect(open()).to.equal(undefined);
  });

  it('does not report a client whose connect failed, nor one that crashed without restart', async () => {
    const failed = tracked();
    failed.client.failConnect = true;
    await failed.client.connect().catch(() => undefined);
    expect(failed.open()).to.equal(undefined);

    const crashed = tracked();
    await crashed.client.connect();
    await crashed.client.disconnect();
    crashed.client.crash(false);
    expect(crashed.open()).to.equal(undefined);
  });

  it('reports a consumer kafkajs restarts after its disconnect(), and one that joins its group again after it', async () => {
    const restarted = tracked();
    await restarted.client.connect();
    await restarted.client.disconnect();
    restarted.client.crash(true);
    expect(restarted.open()).to.include('restarting').and.to.include('restarted it after its disconnect()');

    const rejoined = tracked();
    await rejoined.client.connect();
    await rejoined.client.disconnect();
    rejoined.client.emit(EVENTS.GROUP_JOIN, { payload: {} });
    expect(rejoined.open()).to.include('connected').and.to.include('joined the group again');
  });
});
