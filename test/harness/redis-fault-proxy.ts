/**
 * A command-aware TCP proxy in front of a real Redis: clients connect to
 * 127.0.0.1:<port>, every RESP command is parsed and forwarded byte for byte,
 * replies are piped back untouched. A hold predicate picks a command to stop
 * at: that command and every later one of the same connection are never
 * forwarded (Redis answers a connection in order, so nothing after it could
 * be answered anyway), and the client waits. Used to freeze an engine replica
 * at an exact step (e.g. the guard's authorize script of one decision) and
 * SIGKILL it there; other connections pass.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** One command: its arguments as text (command name first, upper-cased). */
export type RedisCommand = readonly string[];

export interface RedisFaultProxy {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  /** The commands held so far (first of each held connection). */
  readonly held: RedisCommand[];
  /** Commands forwarded so far. */
  readonly forwarded: number;
  /** Replaces the hold predicate (null: pass everything; held connections stay held). */
  setHold(pred: ((cmd: RedisCommand) => boolean) | null): void;
  /** The forwarded commands the watch predicate picked, in order (bounded: the first 1,000). */
  readonly watched: RedisCommand[];
  /** Replaces the watch predicate (null: record nothing). */
  setWatch(pred: ((cmd: RedisCommand) => boolean) | null): void;
  close(): Promise<void>;
}

/** Parses one RESP array of bulk strings at `at`; null while incomplete. */
function parseCommand(buf: Buffer, at: number): { args: string[]; end: number } | null {
  const line = (from: number): { text: string; next: number } | null => {
    const i = buf.indexOf('\r\n', from);
    return i < 0 ? null : { text: buf.toString('latin1', from, i), next: i + 2 };
  };
  const head = line(at);
  if (!head) return null;
  if (!head.text.startsWith('*')) {
    // an inline command (redis-cli style): one line of words
    return { args: head.text.trim().split(/\s+/), end: head.next };
  }
  const n = Number(head.text.slice(1));
  let pos = head.next;
  const args: string[] = [];
  for (let k = 0; k < n; k++) {
    const len = line(pos);
    if (!len) return null;
    if (!len.text.startsWith('$')) throw new Error(`redis proxy: unexpected ${JSON.stringify(len.text)} in a command`);
    const size = Number(len.text.slice(1));
    if (buf.length < len.next + size + 2) return null;
    args.push(buf.toString('utf8', len.next, len.next + size));
    pos = len.next + size + 2;
  }
  if (args[0] !== undefined) args[0] = args[0].toUpperCase();
  return { args, end: pos };
}

export async function startRedisFaultProxy(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<RedisFaultProxy> {
  let hold: ((cmd: RedisCommand) => boolean) | null = null;
  const held: RedisCommand[] = [];
  let forwarded = 0;
  let watch: ((cmd: RedisCommand) => boolean) | null = null;
  const watched: RedisCommand[] = [];
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, upstreamHost);
    sockets.add(client);
    sockets.add(upstream);
    let pending: Buffer = Buffer.alloc(0);
    let holding = false;
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk: Buffer) => {
      if (holding) return; // never forwarded
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let at = 0;
      for (;;) {
        const c = parseCommand(pending, at);
        if (!c) break;
        if (hold?.(c.args)) {
          holding = true;
          held.push(c.args);
          if (at > 0) upstream.write(pending.subarray(0, at));
          pending = Buffer.alloc(0);
          return;
        }
        forwarded++;
        if (watched.length < 1000 && watch?.(c.args)) watched.push(c.args);
        at = c.end;
      }
      if (at > 0) upstream.write(pending.subarray(0, at));
      pending = pending.subarray(at);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    held,
    get forwarded(): number {
      return forwarded;
    },
    setHold(pred): void {
      hold = pred;
    },
    watched,
    setWatch(pred): void {
      watch = pred;
    },
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
