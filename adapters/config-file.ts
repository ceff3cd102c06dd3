/**
 * The file side of configuration: reads the config file and secret files, then
 * hands the text to the pure merge and validation in core/config.ts.
 */
import { readFileSync } from 'node:fs';
import type { LoadConfigOptions, NodewardenConfig } from '../core/config.js';
import { resolveConfig } from '../core/config.js';
import { PoisonInputError } from '../core/errors.js';
import { readTextFile } from './text-file.js';

/** Loads, merges and validates the configuration; throws PoisonInputError with every problem. */
export function loadConfig(opts: Omit<LoadConfigOptions, 'text'> = {}): NodewardenConfig {
  if (!opts.file) return resolveConfig(opts);
  let text: string;
  try {
    text = readTextFile(opts.file);
  } catch (err) {
    throw new PoisonInputError('CONFIG_INVALID', opts.file, [{ path: '', message: `cannot read: ${(err as Error).message}` }], err);
  }
  return resolveConfig({ ...opts, text });
}

/** Reads a secret from a file (mounted Secret) or an environment variable; never from the config itself. */
export function readSecret(file: string | null | undefined, envName: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (file) return readFileSync(file, 'utf8').trim();
  const fromEnv = envName ? env[envName] : undefined;
  if (fromEnv) return fromEnv.trim();
  return null;
}
