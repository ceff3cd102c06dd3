/**
 * HTTP client of the control API (what `nodewarden ctl` uses). Errors are
 * ControlClientErrors with a message fit for a terminal: a refused
 * connection names the server, a 401/403/400 repeats the server's message
 * and problems.
 */
import type { GuardStatus } from '../remediations/ports.js';
import type { RuleToggle } from '../rules/toggles/port.js';
import type { InputProblem } from '../core/errors.js';
import type { LedgerEntry } from '../remediations/ledger/entry.js';
import type { RuleView } from './api.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:9102';

export class ControlClientError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
    readonly problems: InputProblem[] = [],
  ) {
    super(message);
    this.name = 'ControlClientError';
  }
}

export interface ControlClientOptions {
  server: string;
  token: string | null;
  timeoutMs?: number;
}

export interface LedgerParams {
  since?: string;
  until?: string;
  rule?: string;
  node?: string;
  outcome?: string;
  limit?: number;
}

export class ControlClient {
  private readonly base: string;
  constructor(private readonly o: ControlClientOptions) {
    this.base = o.server.replace(/\/+$/, '');
  }

  listRules(): Promise<{ rules: RuleView[] }> {
    return this.call('GET', '/api/v1/rules');
  }

  setRule(id: string, enabled: boolean, body: { reason: string; ttl?: string }): Promise<{ toggle: RuleToggle; rule?: RuleView }> {
    return this.call('POST', `/api/v1/rules/${encodeURIComponent(id)}/${enabled ? 'enable' : 'disable'}`, body);
  }

  pause(reason: string): Promise<{ paused: boolean; reason: string; by: string }> {
    return this.call('POST', '/api/v1/pause', { reason });
  }

  resume(): Promise<{ paused: boolean; by: string }> {
    return this.call('POST', '/api/v1/resume', {});
  }

  guard(): Promise<GuardStatus> {
    return this.call('GET', '/api/v1/guard');
  }

  /** Paging (control/paging-routes.ts): approvals, silences, incidents. Shapes as in docs/control-api.md. */
  approvals(): Promise<{ approvals: Array<Record<string, unknown>> }> {
    return this.call('GET', '/api/v1/approvals');
  }

  decideApproval(id: string, verdict: 'approve' | 'deny'): Promise<{ approval: Record<string, unknown> }> {
    return this.call('POST', `/api/v1/approvals/${encodeURIComponent(id)}/${verdict}`, {});
  }

  silences(): Promise<{ silences: Array<Record<string, unknown>> }> {
    return this.call('GET', '/api/v1/silences');
  }

  createSilence(body: { matchers: string[]; ttl: string; reason: string }): Promise<{ silence: Record<string, unknown> }> {
    return this.call('POST', '/api/v1/silences', body);
  }

  expireSilence(id: string): Promise<{ expired: string }> {
    return this.call('POST', `/api/v1/silences/${encodeURIComponent(id)}/expire`, {});
  }

  incidents(): Promise<{ incidents: Array<Record<string, unknown>> }> {
    return this.call('GET', '/api/v1/incidents');
  }

  ledger(p: LedgerParams): Promise<{ records: LedgerEntry[] }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(p)) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    return this.call('GET', `/api/v1/ledger${q ? `?${q}` : ''}`);
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new ControlClientError(connectMessage(this.base, err), null, null);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new ControlClientError(`${this.base}${path}: HTTP ${res.status}, not a JSON answer: ${text.slice(0, 200)}`, res.status, null);
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; problems?: InputProblem[] } } | null)?.error;
      const problems = Array.isArray(e?.problems) ? e.problems : [];
      const detail = problems.map((p) => `\n  ${p.path || '/'}: ${p.message}`).join('');
      throw new ControlClientError(`server answered ${res.status} ${e?.code ?? ''}: ${e?.message ?? text.slice(0, 200)}${detail}`, res.status, e?.code ?? null, problems);
    }
    return json as T;
  }
}

function connectMessage(base: string, err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code === 'ECONNREFUSED') return `cannot connect to ${base}: connection refused (is the engine running? set --server or NODEWARDEN_SERVER)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the host of ${base}`;
  if ((err as { name?: string }).name === 'TimeoutError') return `${base}: no answer within the timeout`;
  return `cannot reach ${base}: ${cause?.message ?? (err as Error).message}`;
}
