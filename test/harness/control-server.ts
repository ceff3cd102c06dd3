/** An engine HTTP server on a free loopback port over a given control backend (tests only). */
import type { Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import type { ControlBackend } from '../../control/api.js';
import { EngineHttpServer } from '../../control/server.js';
import { parseTokens } from '../../control/tokens.js';

/** `tokens`: lines of a tokens file (`<token> <role> <name>`); `logger`: silent unless a test reads the server's log. */
export async function startControlServer(backend: ControlBackend, tokens: string, clock: Clock, logger: Logger = silentLogger): Promise<{ server: EngineHttpServer; base: string }> {
  const server = new EngineHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: createRegistry('engine'),
    readiness: () => Promise.resolve({ ready: true, checks: {} }),
    control: { backend, tokens: parseTokens(tokens, 'test tokens') },
    clock,
    logger,
  });
  const a = await server.listen();
  return { server, base: `http://127.0.0.1:${a.port}` };
}
