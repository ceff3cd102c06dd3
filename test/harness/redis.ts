/**
 * A real redis-server (Debian package, see scripts/provision/redis.sh) on a
 * free loopback port, no persistence. Binary: $NODEWARDEN_REDIS_SERVER or PATH.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { TestPki } from './tls.js';
import { makeTestPki } from './tls.js';
import { freePort } from './ports.js';
import { makeTempDir, resolveBinary, spawnLogged, waitUntil, type ManagedProcess } from './proc.js';

export interface RedisServer {
  /** e.g. redis://127.0.0.1:40123 */
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  /** With tlsAcl: the CA clients must trust. */
  readonly caFile?: string;
  stop(): Promise<void>;
  /** Stop and start again on the same port (data is not persisted). */
  restart(): Promise<void>;
}

export interface RedisUser {
  username: string;
  password: string;
  /** ACL rules after the password, e.g. `~nw:* &* +@all -@dangerous +info`. */
  rules: string;
}

export interface RedisOptions {
  startTimeoutMs?: number;
  /**
   * TLS only (no plaintext port; CA from test/harness/tls.ts, no client
   * certificates) and ACL users with passwords; the `default` user is off, so
   * an unauthenticated connection can run nothing. The first user is the
   * harness's own; `url` names it (`rediss://<user>@127.0.0.1:<port>`).
   */
  tlsAcl?: { users: RedisUser[] };
  /** Address to bind (default 127.0.0.1; plaintext only). The node harness passes its bridge address. */
  host?: string;
}

/** Send PING (after AUTH when given) over a raw or TLS socket; true on +PONG. */
function ping(port: number, secure?: { pki: TestPki; user: RedisUser }, host?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = secure
      ? tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(secure.pki.caFile), servername: 'localhost' })
      : net.connect({ host: host ?? '127.0.0.1', port });
    const hello = secure ? `AUTH ${secure.user.username} ${secure.user.password}\r\nPING\r\n` : 'PING\r\n';
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once(secure ? 'secureConnect' : 'connect', () => sock.write(hello));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const lines = buf.split('\r\n');
      if (lines.length > (secure ? 2 : 1)) done(secure ? lines[0] === '+OK' && lines[1] === '+PONG' : buf.startsWith('+PONG'));
    });
  });
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const bin = resolveBinary(
    'NODEWARDEN_REDIS_SERVER',
    'redis-server',
    'Install it with scripts/provision/redis.sh (Debian: apt-get install -y redis-server).',
  );
  const dir = makeTempDir('redis');
  const port = await freePort();
  const logFile = path.join(dir, 'redis.log');
  let proc: ManagedProcess | undefined;
  const args = ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', opts.host ?? '127.0.0.1', ...(opts.host ? ['--protected-mode', 'no'] : []), '--daemonize', 'no', '--dir', dir, '--logfile', ''];
  let secure: { pki: TestPki; user: RedisUser } | undefined;
  if (opts.tlsAcl) {
    const [user] = opts.tlsAcl.users;
    if (!user) throw new Error('redis harness: tlsAcl needs at least one user');
    const pki = await makeTestPki(path.join(dir, 'pki'));
    secure = { pki, user };
    // Users and passwords go in a 0600 config file, not on the command line.
    const conf = path.join(dir, 'redis.conf');
    const lines = [
      'port 0',
      `tls-port ${port}`,
      `tls-cert-file ${pki.certFile}`,
      `tls-key-file ${pki.keyFile}`,
      `tls-ca-cert-file ${pki.caFile}`,
      'tls-auth-clients no',
      'user default off',
      ...opts.tlsAcl.users.map((u) => `user ${u.username} on >${u.password} ${u.rules}`),
    ];
    fs.writeFileSync(conf, lines.join('\n') + '\n', { mode: 0o600 });
    args.unshift(conf);
    args.splice(args.indexOf('--port'), 2);
  }

  async function launch(): Promise<void> {
    const p = spawnLogged(bin, args, { name: 'redis', logFile, cwd: dir });
    proc = p;
    try {
      await waitUntil(() => ping(port, secure, opts.host), {
        what: `redis-server on ${opts.host ?? '127.0.0.1'}:${port} (PING)`,
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
    url: secure ? `rediss://${secure.user.username}@127.0.0.1:${port}` : `redis://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    logFile,
    ...(secure ? { caFile: secure.pki.caFile } : {}),
    stop,
    async restart(): Promise<void> {
      await stop();
      await launch();
    },
  };
}
