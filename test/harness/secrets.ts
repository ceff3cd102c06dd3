/**
 * Secret hygiene of the test suite itself (issue 10, "no secret in any log").
 *
 * - One per-run directory holds every log the suite produces: `useRunDir()`
 *   (called by the integration root hooks before any test module runs) points
 *   `TMPDIR` at it, so every harness temp dir, engine/agent log and server log
 *   lands there, in this process and in every child it spawns.
 * - Every token, password and webhook URL a test generates is registered with
 *   `registerSecret()` (kept in memory and appended to `secrets.json` in the
 *   run dir, so a later step can re-scan).
 * - `scanForSecrets()` reads every log file (by name) of the run dir and reports each
 *   file and line that contains a registered secret, the line redacted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Secret {
  label: string;
  value: string;
}

export interface Leak {
  file: string;
  line: number;
  label: string;
  /** The offending line with every registered secret replaced by <label>, cut to 300 characters. */
  excerpt: string;
}

const SECRETS_FILE = 'secrets.json';
/** Data directories of the servers (Kafka segments, etcd, Prometheus TSDB): stored data, not logs. */
const SKIP_DIRS = new Set(['data', 'etcd']);
/**
 * Log files by name (engine.log, broker.log, stdout.log, kube-apiserver.log, ...). Other files of the run
 * dir are inputs that hold secrets on purpose (tokens files, kubeconfigs, password files, keys).
 */
const LOG_NAME = /(\.log|\.out|\.err|stdout|stderr)(\.\d+)?$/i;
const MAX_FILE = 256 * 1024 * 1024;
/** Shorter values match too much by chance (and no generated secret is that short). */
const MIN_SECRET = 8;

const registry = new Map<string, string>();
let runDir: string | undefined;

/** The run directory (created on first use; $NODEWARDEN_TEST_RUN_DIR if set). Sets TMPDIR to it. */
export function useRunDir(): string {
  if (runDir) return runDir;
  const given = process.env['NODEWARDEN_TEST_RUN_DIR'];
  runDir = given && given.length > 0 ? given : fs.mkdtempSync(path.join(os.tmpdir(), 'nodewarden-run-'));
  fs.mkdirSync(runDir, { recursive: true });
  process.env['NODEWARDEN_TEST_RUN_DIR'] = runDir;
  process.env['TMPDIR'] = runDir;
  return runDir;
}

/** Records a secret the suite uses; returns it, so `const T = registerSecret('admin token', randomToken())` reads well. */
export function registerSecret(label: string, value: string): string {
  if (value.length < MIN_SECRET) throw new Error(`registerSecret(${label}): a test secret must be at least ${MIN_SECRET} characters`);
  if (!registry.has(value)) {
    registry.set(value, label);
    if (runDir) fs.appendFileSync(path.join(runDir, SECRETS_FILE), JSON.stringify({ label, value }) + '\n', { mode: 0o600 });
  }
  return value;
}

/** Every registered secret (this process, plus any other process that wrote to the run dir's registry). */
export function registeredSecrets(): Secret[] {
  const all = new Map(registry);
  if (runDir) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(runDir, SECRETS_FILE), 'utf8');
    } catch {
      /* nothing registered on disk */
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      const s = JSON.parse(line) as Secret;
      if (!all.has(s.value)) all.set(s.value, s.label);
    }
  }
  return [...all].map(([value, label]) => ({ label, value }));
}

function redact(line: string, secrets: readonly Secret[]): string {
  let out = line;
  for (const s of secrets) out = out.split(s.value).join(`<${s.label}>`);
  return out.length > 300 ? `${out.slice(0, 300)}…` : out;
}

function* files(dir: string): Generator<string> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // removed while scanning
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) yield* files(p);
    } else if (e.isFile() && LOG_NAME.test(e.name)) yield p;
  }
}

/** Every line of every file under `dir` that contains one of `secrets`. */
export function scanForSecrets(dir: string, secrets: readonly Secret[]): { leaks: Leak[]; filesScanned: number; bytesScanned: number } {
  const leaks: Leak[] = [];
  let filesScanned = 0;
  let bytesScanned = 0;
  const needles = secrets.map((s) => ({ ...s, bytes: Buffer.from(s.value, 'utf8') }));
  for (const file of files(dir)) {
    let buf: Buffer;
    try {
      if (fs.statSync(file).size > MAX_FILE) continue;
      buf = fs.readFileSync(file);
    } catch {
      continue;
    }
    filesScanned++;
    bytesScanned += buf.length;
    const hits = needles.filter((n) => buf.includes(n.bytes));
    if (hits.length === 0) continue;
    const lines = buf.toString('utf8').split('\n');
    lines.forEach((text, i) => {
      for (const h of hits) if (text.includes(h.value)) leaks.push({ file, line: i + 1, label: h.label, excerpt: redact(text, secrets) });
    });
  }
  return { leaks, filesScanned, bytesScanned };
}

/** One line per leak: `file:line: <label> in: <redacted line>`. */
export function formatLeaks(leaks: readonly Leak[]): string {
  return leaks.map((l) => `${l.file}:${l.line}: ${l.label} in: ${l.excerpt}`).join('\n');
}
