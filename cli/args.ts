/**
 * Shared flag parsing for every command (node:util parseArgs, strict), with
 * a clear error on an unknown or malformed flag.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { PoisonInputError } from '../core/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parseFlags<O extends Options>(command: string, argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new PoisonInputError('REQUEST_INVALID', `nodewarden ${command}`, [{ path: '', message: (err as Error).message }], err);
  }
}
