/**
 * Agent `kill -9` and restart while Xids keep arriving (issue 10, item 1), with
 * the real agent process (`bin/nodewarden agent`), a kernel log in a host root
 * (kmsg records in a regular file under `<hostRoot>/dev/kmsg`) and the real
 * Kafka broker.
 *
 * A writer appends one Xid 79 record every 25 ms, each with its own SEQ and pid.
 * The agent (agent.stateDir set) is SIGKILLed three times mid-stream, stays down
 * ~1.5 s each time while records keep coming, and is started again with the
 * same state directory. At the end every record written must be on the signals
 * topic (none lost), and every record must carry exactly one event id however
 * often it was sent (a record read again after a kill is the same event, which
 * the engine's dedupe-by-id drops: none duplicated downstream).
 *
 * Without the cursor (before this test) a restarted agent tailed from the end:
 * every record written while it was down was lost.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import type { Consumer } from 'kafkajs';
import { freePort } from '../harness/ports.js';
import { sharedKafka } from './servers.js';
import { BIN, ROOT, sleep, waitFor } from './engine-support.js';
import { stoppableConsumer } from '../harness/stoppable-consumer.js';

interface AgentProc {
  proc: ChildProcess;
  exited: Promise<number | null>;
  url: string;
}

function kmsgXid(seq: number): string {
  // pid = seq: the test maps every event back to the record it came from.
  return `4,${seq},${6_781_741_548_779 + seq * 1000},-;NVRM: Xid (PCI:0000:3b:00): 79, pid=${seq}, name=train, GPU has fallen off the bus.\n`;
}

describe('agent kill -9 and restart: no Xid lost, none duplicated (real agent, real Kafka)', function () {
  this.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'nw-agent-kill-'));
  const hostRoot = join(dir, 'host');
  const kmsg = join(hostRoot, 'dev', 'kmsg');
  const stateDir = join(dir, 'state');
  const topic = `agent-kill-${process.pid}-${Date.now()}`;
  let agent: AgentProc | undefined;
  let consumer: Consumer | undefined;
  let writer: NodeJS.Timeout | undefined;

  after(async () => {
    if (writer) clearInterval(writer);
    if (agent && agent.proc.exitCode === null && agent.proc.signalCode === null) {
      agent.proc.kill('SIGKILL');
      await agent.exited;
    }
    await consumer?.disconnect().catch(() => undefined);
  });

  async function startAgent(brokers: string[], port: number, run: number): Promise<AgentProc> {
    const configFile = join(dir, 'agent.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        kafka: { brokers, clientId: 'nw-test-agent-kill', topics: { signals: topic } },
        agent: {
          stateDir,
          http: { host: '127.0.0.1', port },
          intervals: { kmsgPoll: '100ms' },
          publish: { batchSize: 50, lingerMs: 20 },
          dcgmUrl: `http://127.0.0.1:${await freePort()}/metrics`,
        },
      }),
    );
    const logPath = join(dir, `agent-${run}.log`);
    const fd = openSync(logPath, 'a');
    // No Kubernetes here (no kubeconfig to find); logs go straight to a file.
    const env = { ...process.env, HOME: dir, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', NODEWARDEN_LOG_LEVEL: 'info' };
    const proc = spawn(process.execPath, [BIN, 'agent', '--config', configFile, '--host-root', hostRoot, '--node', 'gpu-node-kill'], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      'agent /healthz',
      async () => {
        if (proc.exitCode !== null) throw new Error(`agent exited early:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
        return fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      60_000,
      100,
    );
    return { proc, exited, url };
  }

  it('every record written across three SIGKILLs reaches Kafka, each under one event id', async () => {
    const kafka = await sharedKafka();
    await kafka.createTopics([topic], 1);
    mkdirSync(join(hostRoot, 'dev'), { recursive: true });
    mkdirSync(join(hostRoot, 'proc'), { recursive: true });
    writeFileSync(join(hostRoot, 'proc', 'uptime'), '6781741.55 100.00\n');
    // Boot-time lines the agent primes on (never reported): the log is not empty at the first start.
    writeFileSync(kmsg, '6,1,1000,-;NVRM: loading NVIDIA UNIX x86_64 Kernel Module\n');

    // Every gpu.xid on the topic: pid → event ids, and how many messages in all.
    const idsByRecord = new Map<number, Set<string>>();
    let messages = 0;
    consumer = stoppableConsumer(new kafkajs.Kafka({ clientId: 'nw-test-agent-kill-reader', brokers: kafka.brokers, logLevel: kafkajs.logLevel.NOTHING }), { groupId: `r-${topic}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        const e = JSON.parse(message.value?.toString('utf8') ?? '{}') as { id: string; type: string; data: { pid?: number } };
        if (e.type === 'gpu.xid' && typeof e.data.pid === 'number') {
          messages += 1;
          const s = idsByRecord.get(e.data.pid) ?? new Set<string>();
          s.add(e.id);
          idsByRecord.set(e.data.pid, s);
        }
        return Promise.resolve();
      },
    });

    const port = await freePort();
    agent = await startAgent(kafka.brokers, port, 0);
    let seq = 1;
    writer = setInterval(() => appendFileSync(kmsg, kmsgXid(++seq)), 25);

    const downMs: number[] = [];
    const recoverMs: number[] = [];
    for (let cycle = 1; cycle <= 3; cycle++) {
      // Mid-stream: the agent has delivered fresh records of this run.
      const seen = idsByRecord.size;
      await waitFor(`run ${cycle - 1} delivering`, () => idsByRecord.size >= seen + 20 || undefined, 60_000, 20);
      agent.proc.kill('SIGKILL');
      await agent.exited;
      expect(agent.proc.signalCode).to.equal('SIGKILL');
      const killedAt = Date.now();
      const lastBefore = seq;
      await sleep(1500); // records keep coming while no agent runs
      agent = await startAgent(kafka.brokers, port, cycle);
      downMs.push(Date.now() - killedAt);
      // Recovered: every record written while it was down has arrived.
      const upTo = seq;
      await waitFor(`records ${lastBefore}..${upTo} after restart ${cycle}`, () => {
        for (let s = lastBefore; s <= upTo; s++) if (s > 1 && !idsByRecord.has(s)) return undefined;
        return true;
      }, 60_000, 20);
      recoverMs.push(Date.now() - killedAt);
    }
    clearInterval(writer);
    writer = undefined;
    const last = seq;
    await waitFor('every record on the topic', () => (idsByRecord.size >= last - 1 ? true : undefined), 60_000, 50);
    await sleep(1000); // late re-sends, if any, would land now

    const lost: number[] = [];
    for (let s = 2; s <= last; s++) if (!idsByRecord.has(s)) lost.push(s);
    const twoIds = [...idsByRecord].filter(([, ids]) => ids.size !== 1).map(([s]) => s);
    const distinct = [...idsByRecord.values()].reduce((n, ids) => n + ids.size, 0);
    console.log(
      `      FAULT-FIGURE agent_kill records=${last - 1} lost=${lost.length} distinct_ids=${distinct} messages=${messages} resent_same_id=${messages - distinct} ` +
        `down_ms=${downMs.join('/')} kill_to_all_delivered_ms=${recoverMs.join('/')}`,
    );
    expect(lost, 'records never published').to.deep.equal([]);
    expect(twoIds, 'records published under more than one event id (the engine would count them twice)').to.deep.equal([]);
    expect(idsByRecord.size).to.equal(last - 1);
    // The cursor is where the last run stopped (one small file).
    const cursor = JSON.parse(readFileSync(join(stateDir, 'kernel-log.cursor'), 'utf8')) as { kind: string; offset: number };
    expect(cursor.kind).to.equal('file');
    expect(cursor.offset).to.be.greaterThan(0);
  });
});
