/**
 * The CronPort on node-cron v4: in-process tasks (no forked daemon), unref'd
 * timers (a schedule never keeps the process alive), node-cron's own log lines
 * (missed executions) routed to our logger.
 */
import { createTask, validateDetailed } from 'node-cron';
import type { Logger as CronLogger } from 'node-cron';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CronHandle, CronPort } from './scheduler.js';

function cronLogger(log: Logger): CronLogger {
  return {
    info: (m) => log.info({}, m),
    warn: (m) => log.warn({}, m),
    error: (m, err) => log.error({ ...(err ? { err: errorMessage(err) } : {}) }, typeof m === 'string' ? m : errorMessage(m)),
    debug: (m, err) => log.debug({ ...(err ? { err: errorMessage(err) } : {}) }, typeof m === 'string' ? m : errorMessage(m)),
  };
}

export function createNodeCron(logger: Logger): CronPort {
  const log = logger.child({ component: 'node-cron' });
  return {
    validate(expression: string): string | null {
      try {
        const v = validateDetailed(expression);
        if (v.valid) return null;
        return v.errors.map((e) => `${e.field}: ${e.message}`).join('; ') || 'invalid';
      } catch (err) {
        return errorMessage(err);
      }
    },
    schedule(expression: string, timezone: string, name: string, fire: (slotMs: number) => void): CronHandle {
      const task = createTask(
        expression,
        (ctx) => {
          fire(ctx.date.getTime());
        },
        { name: `nodewarden:${name}`, timezone, unref: true, logger: cronLogger(log) },
      );
      void Promise.resolve(task.start()).catch((err: unknown) => log.error({ job: name, err: errorMessage(err) }, 'cron task did not start'));
      return {
        stop(): void {
          void Promise.resolve(task.destroy()).catch((err: unknown) => log.warn({ job: name, err: errorMessage(err) }, 'cron task did not stop cleanly'));
        },
      };
    },
  };
}
