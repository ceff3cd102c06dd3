import net from 'node:net';

/** Ports already handed out by this process, so concurrent callers never get the same one. */
const handedOut = new Set<number>();

function probe(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('freePort: no port assigned'))));
    });
  });
}

/**
 * A TCP port on the loopback interface that is free right now (bind to port 0,
 * read it back, close). The usual race applies: bind it soon.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await probe(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: could not find an unused port after 20 attempts');
}

/** Throws a one-line error if `port` cannot be bound on `host` right now (a fixed port a harness needs). */
export function assertPortFree(port: number, what: string, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`${what}: port ${host}:${port} is taken (${e.code ?? e.message}); stop what holds it`)));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
  });
}
