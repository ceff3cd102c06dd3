/**
 * No secret reaches a log line, whatever shape it arrives in: a config dump,
 * an axios error (request config with URL, headers and body), kafkajs and
 * ioredis errors, credential-shaped strings under innocent keys.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { AxiosError, AxiosHeaders } from 'axios';
import kafkajs from 'kafkajs';
import { ReplyError } from 'ioredis';
import { loadConfig } from '../../../adapters/config-file.js';
import { createLogger } from '../../../adapters/logger.js';

const TOKEN = 'ctl-admin-token-5f0c0b2d9a7e4410';
const WEBHOOK = 'https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX';
const ROUTING_KEY = 'R0UT1NGK3Y0123456789abcdefABCDEF';
const PASSWORD = 'kafka-scram-pw-7d1e0c';

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { lines, logger: createLogger({ component: 'test', level: 'debug', destination }) };
}

function expectClean(lines: string[]): void {
  const all = lines.join('');
  expect(all.length).to.be.greaterThan(0);
  for (const s of [TOKEN, WEBHOOK, 'XXXXXXXXXXXXXXXXXXXXXXXX', ROUTING_KEY, PASSWORD]) expect(all, s).not.to.contain(s);
}

describe('logger: secrets are redacted at any depth', () => {
  it('an axios error with the request config (webhook URL, bearer header, routing key body)', () => {
    const { lines, logger } = capture();
    const config = { url: WEBHOOK, method: 'post', headers: new AxiosHeaders({ Authorization: `Bearer ${TOKEN}` }), data: JSON.stringify({ routing_key: ROUTING_KEY }) };
    const err = new AxiosError('Request failed with status code 500', 'ERR_BAD_RESPONSE', config, {}, { status: 500, statusText: 'x', headers: {}, config, data: {} });
    logger.error({ err }, 'post failed');
    logger.error({ error: err, nested: { cause: err } }, 'again');
    expectClean(lines);
    const rec = JSON.parse(lines[0] ?? '{}') as { err: Record<string, unknown> };
    expect(rec.err).to.deep.equal({ type: 'AxiosError', message: 'Request failed with status code 500', code: 'ERR_BAD_RESPONSE', status: 500 });
  });

  it('a config dump and option objects with secrets at depth', () => {
    const { lines, logger } = capture();
    logger.info({ config: loadConfig({}) }, 'effective config');
    logger.info({ kafka: { brokers: ['b:9093'], sasl: { mechanism: 'scram-sha-512', username: 'u', password: PASSWORD } } }, 'kafka options');
    logger.info({ client: { options: { redis: { password: PASSWORD, tls: {} } } } }, 'deep');
    logger.info({ request: { headers: { Authorization: `Bearer ${TOKEN}`, 'X-Api-Key': TOKEN } } }, 'headers');
    logger.info({ slack: { webhook_url: WEBHOOK }, pd: { routingKey: ROUTING_KEY } }, 'pagers');
    expectClean(lines);
    expect(lines[1]).to.contain('"brokers":["b:9093"]');
  });

  it('keeps shared (non-cyclic) objects and cuts cycles', () => {
    const { lines, logger } = capture();
    const shared = { node: 'gpu-1' };
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    logger.info({ first: shared, second: shared, cyclic }, 'shapes');
    expect(JSON.parse(lines[0] ?? '{}')).to.deep.include({ first: { node: 'gpu-1' }, second: { node: 'gpu-1' }, cyclic: { a: 1, self: '[circular]' } });
  });

  it('credential-shaped strings under innocent keys and in messages of kafkajs and ioredis errors', () => {
    const { lines, logger } = capture();
    logger.warn({ target: WEBHOOK, url: `redis://nodewarden:${PASSWORD}@redis:6379/0`, hdr: `Bearer ${TOKEN}` }, 'strings');
    logger.error({ err: new kafkajs.KafkaJSConnectionError(`SASL SCRAM SHA512 authentication failed for ${WEBHOOK}`) }, 'kafka');
    logger.error({ err: new (ReplyError as unknown as new (message: string) => Error)(`WRONGPASS invalid username-password pair (url redis://u:${PASSWORD}@h)`) }, 'redis');
    expectClean(lines);
    expect(lines[0]).to.contain('redis://[redacted]@redis:6379/0');
    expect(JSON.parse(lines[1] ?? '{}')).to.deep.include({ msg: 'kafka' });
  });
});
