/**
 * A real redis-server (Debian package, see scripts/provision/redis.sh) on a
 * free loopback port, no persistence. Binary: $NODEWARDEN_REDIS_SERVER or PATH.
 */
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports.js';
import { makeTempDir, resolveBinary, spawnLogged, waitUntil, type ManagedProcess } from './proc.js';

export interface RedisServer {
  /** e.g. redis://127.0.0.1:40123 (the host is opts.host when given) */
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  stop(): Promise<void>;
  /** Stop and start again on the same port (data is not persisted). */
  restart(): Promise<void>;
}

/** Send PING over a raw socket; true on +PONG. */
function ping(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

/** opts.host: the address to bind (default 127.0.0.1; the node harness passes its bridge address). */
export async function startRedis(opts: { startTimeoutMs?: number; host?: string } = {}): Promise<RedisServer> {
  const host = opts.host ?? '127.0.0.1';
  const bin = resolveBinary(
    'NODEWARDEN_REDIS_SERVER',
    'redis-server',
    'Install it with scripts/provision/redis.sh (Debian: apt-get install -y redis-server).',
  );
  const dir = makeTempDir('redis');
  const port = await freePort();
  const logFile = path.join(dir, 'redis.log');
  let proc: ManagedProcess | undefined;

  async function launch(): Promise<void> {
    const p = spawnLogged(
      bin,
      ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', host, '--protected-mode', 'no', '--daemonize', 'no', '--dir', dir, '--logfile', ''],
      { name: 'redis', logFile, cwd: dir },
    );
    proc = p;
    try {
      await waitUntil(() => ping(host, port), {
        what: `redis-server on ${host}:${port} (PING)`,
        timeoutMs: opts.startTimeoutMs ?? 20_000,
        intervalMs: 50,
        proc: p,
      });
    } catch (err) {
      await p.kill();
      throw err;
    }
  }

  async function stop(): Promise<void> {
    await proc?.stop(10_000);
  }

  await launch();
  return {
    url: `redis://${host}:${port}`,
    port,
    logFile,
    stop,
    async restart(): Promise<void> {
      await stop();
      await launch();
    },
  };
}
