/**
 * User-supplied regular expressions (rule `regex` predicates, `reason` in rule
 * tests) run on RE2 semantics: matching is linear in the input, so a pattern
 * such as `(a+)+$` cannot hang evaluation (ADR 0015). Constructs RE2 cannot run
 * in linear time (backreferences, lookaround) are rejected at load with the
 * field's path, like any other invalid pattern.
 */
import { RE2JS } from 're2js';

/** Longest pattern accepted; longer ones are rejected at load. */
export const MAX_PATTERN_LENGTH = 1024;

/** A compiled linear-time pattern: `test` searches anywhere in the string, like `RegExp.prototype.test`. */
export interface SafeRegex {
  readonly source: string;
  test(input: string): boolean;
}

/** Compiles `pattern` or returns the reason it is not accepted. */
export function compileSafeRegex(pattern: string): SafeRegex | { error: string } {
  if (pattern.length > MAX_PATTERN_LENGTH) return { error: `regular expression longer than ${MAX_PATTERN_LENGTH} characters` };
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    return { error: `invalid regular expression (RE2 syntax: no backreferences or lookaround): ${(err as Error).message}` };
  }
  return { source: pattern, test: (input: string) => re.matcher(input).find() };
}

export function isSafeRegex(r: SafeRegex | { error: string }): r is SafeRegex {
  return !('error' in r);
}
