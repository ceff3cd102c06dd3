/**
 * A real Prometheus server (Debian package, see scripts/provision/prometheus.sh)
 * scraping the given targets every second. Binary: $NODEWARDEN_PROMETHEUS or PATH.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports.js';
import { makeTempDir, resolveBinary, spawnLogged, waitUntil } from './proc.js';

export interface ScrapeTarget {
  job: string;
  /** Full metrics URL, e.g. http://127.0.0.1:9400/metrics */
  url: string;
}

export interface PromQueryData {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: unknown;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly logFile: string;
  /** Instant query; resolves to the API's `data` ({ resultType, result }). Throws on API errors. */
  query(expr: string): Promise<PromQueryData>;
  /** Instant query expected to return a vector. */
  queryVector(expr: string): Promise<PromSample[]>;
  /** Wait until every active target of `job` has been scraped successfully (health "up"). */
  waitForTarget(job: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

interface ActiveTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

function yamlString(s: string): string {
  return JSON.stringify(s); // JSON strings are valid YAML double-quoted scalars
}

function renderConfig(targets: ScrapeTarget[]): string {
  interface Job {
    scheme: string;
    path: string;
    params: [string, string][];
    hosts: string[];
  }
  const jobs = new Map<string, Job>();
  for (const t of targets) {
    const u = new URL(t.url);
    const scheme = u.protocol.replace(/:$/, '');
    const job = jobs.get(t.job);
    if (job) {
      if (job.scheme !== scheme || job.path !== u.pathname || job.params.length > 0 || u.search !== '') {
        throw new Error(`prometheus harness: job ${t.job} has targets with different schemes/paths/params; use distinct job names`);
      }
      job.hosts.push(u.host);
    } else {
      jobs.set(t.job, { scheme, path: u.pathname || '/metrics', params: [...u.searchParams.entries()], hosts: [u.host] });
    }
  }
  const lines = ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', '  evaluation_interval: 1s', 'scrape_configs:'];
  for (const [name, job] of jobs) {
    lines.push(`  - job_name: ${yamlString(name)}`, `    scheme: ${job.scheme}`, `    metrics_path: ${yamlString(job.path)}`);
    if (job.params.length > 0) {
      lines.push('    params:');
      for (const [k, v] of job.params) lines.push(`      ${yamlString(k)}: [${yamlString(v)}]`);
    }
    lines.push('    static_configs:', `      - targets: [${job.hosts.map(yamlString).join(', ')}]`);
  }
  return lines.join('\n') + '\n';
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as ApiResponse<T>;
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`prometheus API ${url}: HTTP ${res.status} ${body.errorType ?? ''} ${body.error ?? ''}`.trim());
  }
  return body.data;
}

export async function startPrometheus(
  targets: ScrapeTarget[],
  /**
   * config: a whole prometheus.yml used instead of one rendered from
   * `targets` (e.g. kubernetes_sd_configs against a real apiserver).
   */
  opts: { startTimeoutMs?: number; config?: string; bin?: string } = {},
): Promise<PrometheusServer> {
  const bin = opts.bin ?? resolveBinary(
    'NODEWARDEN_PROMETHEUS',
    'prometheus',
    'Install it with scripts/provision/prometheus.sh (Debian: apt-get install -y prometheus).',
  );
  const dir = makeTempDir('prometheus');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const configFile = path.join(dir, 'prometheus.yml');
  const logFile = path.join(dir, 'prometheus.log');
  fs.writeFileSync(configFile, opts.config ?? renderConfig(targets));
  fs.mkdirSync(path.join(dir, 'data'));

  const proc = spawnLogged(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
      '--log.level=info',
    ],
    { name: 'prometheus', logFile, cwd: dir },
  );
  try {
    await waitUntil(async () => (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok, {
      what: `prometheus on ${base} (/-/ready)`,
      timeoutMs: opts.startTimeoutMs ?? 30_000,
      intervalMs: 100,
      proc,
    });
  } catch (err) {
    await proc.kill();
    throw err;
  }

  async function query(expr: string): Promise<PromQueryData> {
    return getJson<PromQueryData>(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
  }

  return {
    url: base,
    logFile,
    query,
    async queryVector(expr: string): Promise<PromSample[]> {
      const data = await query(expr);
      if (data.resultType !== 'vector') throw new Error(`prometheus: ${expr} returned ${data.resultType}, not a vector`);
      return data.result as PromSample[];
    },
    async waitForTarget(job: string, timeoutMs = 30_000): Promise<void> {
      let last = 'no active target for this job yet';
      try {
        await waitUntil(
          async () => {
            const data = await getJson<{ activeTargets: ActiveTarget[] }>(`${base}/api/v1/targets?state=active`);
            const mine = data.activeTargets.filter((t) => t.labels['job'] === job);
            if (mine.length === 0) return false;
            last = mine.map((t) => `${t.scrapeUrl}: ${t.health}${t.lastError ? ` (${t.lastError})` : ''}`).join('; ');
            return mine.every((t) => t.health === 'up');
          },
          { what: `prometheus target job=${job}`, timeoutMs, intervalMs: 250, proc },
        );
      } catch (err) {
        throw new Error(`${err instanceof Error ? err.message : String(err)}\ntarget state: ${last}`, { cause: err });
      }
    },
    stop: () => proc.stop(10_000),
  };
}
