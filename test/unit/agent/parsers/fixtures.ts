/** Reads fixtures from the source tree (tests run from dist/, fixtures are not copied). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Repository root: dist/test/unit/agent/parsers/ is five levels below it. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

export function fixture(rel: string): string {
  return readFileSync(`${REPO_ROOT}test/fixtures/${rel}`, 'utf8');
}
