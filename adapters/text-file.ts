/**
 * Reading a user's text file (rules, rule tests, config, cluster dumps) with a
 * size bound checked before the read: a multi-GiB file never reaches memory.
 */
import { readFileSync, statSync } from 'node:fs';
import { YAML_MAX_BYTES } from '../core/yaml.js';

export function readTextFile(file: string, maxBytes = YAML_MAX_BYTES): string {
  const size = statSync(file).size;
  if (size > maxBytes) throw new Error(`file is ${size} bytes; the limit is ${maxBytes}`);
  return readFileSync(file, 'utf8');
}
