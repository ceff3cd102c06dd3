/**
 * TLS and credentials for the Kafka and Redis clients, from the config: CA
 * bundles and passwords are read from files (mounted Secrets) or, for the Redis
 * password, `$NODEWARDEN_REDIS_PASSWORD` — never from the config itself. The
 * result is plain options the kafkajs and ioredis adapters pass through.
 */
import { readFileSync } from 'node:fs';
import type { KafkaConfig, NodewardenConfig } from '../core/config.js';
import { readSecret } from './config-file.js';
import { PoisonInputError } from '../core/errors.js';

export interface TlsClientOptions {
  ca: string[];
  rejectUnauthorized: true;
}

interface Credentials {
  username: string;
  password: string;
}
/** One member per mechanism, as kafkajs types it. */
export type SaslOptions = ({ mechanism: 'plain' } & Credentials) | ({ mechanism: 'scram-sha-256' } & Credentials) | ({ mechanism: 'scram-sha-512' } & Credentials);

export interface KafkaTransport {
  ssl: boolean | TlsClientOptions;
  sasl?: SaslOptions;
}

export interface RedisTransport {
  /** The configured URL without its user part (ioredis would let the URL's empty password win over `password`). */
  url: string;
  options: { username?: string; password?: string; tls?: TlsClientOptions };
}

/** Reads one secret file; a missing or empty file is a one-line config error naming the setting. */
function secretFile(file: string, setting: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new PoisonInputError('CONFIG_INVALID', setting, [{ path: '', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }], err);
  }
  if (text.length === 0) throw new PoisonInputError('CONFIG_INVALID', setting, [{ path: '', message: `${file} is empty` }]);
  return text;
}

function tls(caFile: string | null, setting: string): TlsClientOptions | undefined {
  return caFile === null ? undefined : { ca: [secretFile(caFile, setting)], rejectUnauthorized: true };
}

export function kafkaTransport(k: KafkaConfig): KafkaTransport {
  const out: KafkaTransport = { ssl: k.ssl ? (tls(k.caFile, 'kafka.caFile') ?? true) : false };
  if (k.sasl) {
    const c: Credentials = {
      username: secretFile(k.sasl.usernameFile, 'kafka.sasl.usernameFile'),
      password: secretFile(k.sasl.passwordFile, 'kafka.sasl.passwordFile'),
    };
    const m = k.sasl.mechanism;
    out.sasl = m === 'plain' ? { mechanism: m, ...c } : m === 'scram-sha-256' ? { mechanism: m, ...c } : { mechanism: m, ...c };
  }
  return out;
}

/** How to reach Redis: `new Redis(t.url, t.options)`. The ACL user comes from the URL (`rediss://user@host:port`). */
export function redisTransport(r: NodewardenConfig['redis'], env: NodeJS.ProcessEnv = process.env): RedisTransport {
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw new PoisonInputError('CONFIG_INVALID', 'redis.url', [{ path: '', message: 'must be a URL like redis://host:6379 or rediss://user@host:6380' }]);
  }
  const options: RedisTransport['options'] = {};
  if (url.username) options.username = decodeURIComponent(url.username);
  url.username = '';
  url.password = '';
  const password = r.passwordFile !== null ? secretFile(r.passwordFile, 'redis.passwordFile') : readSecret(null, 'NODEWARDEN_REDIS_PASSWORD', env);
  if (password) options.password = password;
  const t = tls(r.caFile, 'redis.caFile');
  if (t) options.tls = t;
  return { url: url.toString(), options };
}
