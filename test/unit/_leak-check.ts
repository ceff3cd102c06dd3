/**
 * Root hook of the unit and fuzz runs (their mocharc requires it; so does the
 * one-file command `--require dist/test/unit/_leak-check.js`): the shared
 * leaked-handle check of test/harness/leak-check.ts.
 */
export { mochaGlobalTeardown, mochaHooks } from '../harness/leak-check.js';
