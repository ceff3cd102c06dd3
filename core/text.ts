/**
 * Free text from users and from the wire (toggle reasons, names, bad input
 * lines) must never reach a terminal or a log line raw: an ESC sequence can
 * rewrite what an operator sees, a newline can forge a ledger or log line.
 * Inputs are rejected at the API boundary (`controlCharProblem`); outputs
 * escape whatever got through (`escapeControl`).
 */

// C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and
// bidirectional overrides that reorder what a terminal shows.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_TEST = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

/** `s` with every control character written as a visible escape (`\n`, `\e`, `\x07`, `\u202e`). */
export function escapeControl(s: string): string {
  if (!CONTROL_TEST.test(s)) return s;
  return s.replace(CONTROL, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Why `s` is not acceptable free text, or null: control characters (including newlines) are refused. */
export function controlCharProblem(s: string): string | null {
  const m = CONTROL_TEST.exec(s);
  if (!m) return null;
  return `must not contain control characters (found ${escapeControl(m[0])} at offset ${m.index})`;
}
