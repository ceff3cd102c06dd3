/**
 * GPU-level isolation through DRA device taints (issue 11, docs/gpu-scope.md).
 *
 * - {@link DeviceTaintApi}: the port to the API server (adapter:
 *   client-node-device-taints.ts; unit tests use a fake).
 * - {@link DeviceTaintDiscovery}: "does this cluster serve DeviceTaintRule, in
 *   which version, and does it know the effect `None`", cached for a TTL.
 * - {@link DeviceTaintExecutor}: the `taint` / `untaint` actions.
 *   `taintDevice` creates one DeviceTaintRule per GPU (effect NoSchedule, or
 *   `None` in dry-run: visible to people, no effect; where the server does not
 *   know `None` — Kubernetes 1.33/1.34 — a server-side dry run instead).
 *   `untaintDevice` is the explicit undo: deletes that rule, only if nodewarden
 *   made it. The repair ladder calls it when it returns a GPU to service.
 *
 * Executors never throw: failures become an ExecutionResult with a NodewardenError.
 */
import type { Clock } from '../../core/clock.js';
import type { DeviceTaintsConfig } from '../../core/config.js';
import type { ActionKind, Decision } from '../../core/decision.js';
import { NodewardenError, errorMessage } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { ExecutionResult, Executor } from '../ports.js';
import { asNodewardenError, isCode } from './errors.js';
import {
  buildDeviceTaintRule,
  deviceTaintRuleName,
  gpuRefOf,
  isOwnDeviceTaintRule,
  type DeviceTaintEffect,
  type GpuRef,
  type WireDeviceTaintRule,
} from './device-taint-rules.js';

/** What discovery found. */
export interface DeviceTaintSupport {
  /** `resource.k8s.io/<version>` serving DeviceTaintRule, or null when the cluster does not serve it. */
  apiVersion: string | null;
  /** Whether the effect `None` is accepted (learned on first use; null = not tried yet). */
  effectNone: boolean | null;
}

export interface DeviceTaintApi {
  /** The served `resource.k8s.io/<version>` of DeviceTaintRule, newest first; null when none is. */
  discover(): Promise<string | null>;
  /** Creates the rule; `dryRun` asks the server to validate and admit it without storing it. AlreadyExists → CONFLICT. */
  create(apiVersion: string, rule: WireDeviceTaintRule, opts: { dryRun: boolean }): Promise<WireDeviceTaintRule>;
  /** NOT_FOUND when absent. */
  get(apiVersion: string, name: string): Promise<WireDeviceTaintRule>;
  /** Deletes the rule if it still has `uid` (a precondition: never someone's newer object). NOT_FOUND when absent. */
  delete(apiVersion: string, name: string, opts: { uid?: string; dryRun: boolean }): Promise<void>;
}

export interface DeviceTaintDiscoveryOptions {
  api: DeviceTaintApi;
  clock: Clock;
  ttlMs: number;
  logger?: Logger;
}

/** Discovery with a TTL cache: one API call per TTL per replica, and none when disabled. */
export class DeviceTaintDiscovery {
  private cached: { at: number; apiVersion: string | null } | undefined;
  private inFlight: Promise<string | null> | undefined;
  /** Learned from the server's answer to effect `None`; kept per served version. */
  private none = new Map<string, boolean>();
  private readonly log: Logger;

  constructor(private readonly o: DeviceTaintDiscoveryOptions) {
    this.log = o.logger ?? silentLogger;
  }

  /** The served apiVersion, or null. A failed discovery answers null (cordon fallback) and is retried after the TTL. */
  async apiVersion(): Promise<string | null> {
    const now = this.o.clock.now();
    if (this.cached && now - this.cached.at < this.o.ttlMs) return this.cached.apiVersion;
    this.inFlight ??= this.o.api
      .discover()
      .catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'DeviceTaintRule discovery failed: GPU faults cordon the node until it succeeds');
        return null;
      })
      .then((v) => {
        if (this.cached?.apiVersion !== v) this.log.info({ apiVersion: v }, v ? `DeviceTaintRule served as ${v}: GPU faults taint the device` : 'DeviceTaintRule not served: GPU faults cordon the node');
        this.cached = { at: this.o.clock.now(), apiVersion: v };
        return v;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }

  async support(): Promise<DeviceTaintSupport> {
    const apiVersion = await this.apiVersion();
    return { apiVersion, effectNone: apiVersion === null ? null : (this.none.get(apiVersion) ?? null) };
  }

  noteEffectNone(apiVersion: string, accepted: boolean): void {
    this.none.set(apiVersion, accepted);
  }

  /** Forget the cached answer (a 404 on a served version: the API went away). */
  invalidate(): void {
    this.cached = undefined;
  }
}

export interface DeviceTaintExecutorOptions {
  api: DeviceTaintApi;
  discovery: DeviceTaintDiscovery;
  config: DeviceTaintsConfig;
  clock: Clock;
  logger?: Logger;
  /** Shadow mode: effect `None` (or a server-side dry run); the ledger outcome is `dry-run`. */
  dryRun?: boolean;
}

const ACTIONS: readonly ActionKind[] = ['taint', 'untaint'];

function fail(err: unknown, context: string): ExecutionResult {
  const e = asNodewardenError(err);
  return { ok: false, detail: `${context}: ${e.message}`, error: e };
}

/** A 422 naming the taint effect: this server does not know `None`. */
function rejectsEffect(err: unknown): boolean {
  return isCode(err, 'REQUEST_INVALID') && /effect/i.test(errorMessage(err));
}

export class DeviceTaintExecutor implements Executor {
  readonly actions = ACTIONS;
  private readonly log: Logger;

  constructor(private readonly o: DeviceTaintExecutorOptions) {
    this.log = o.logger ?? silentLogger;
  }

  async execute(decision: Decision): Promise<ExecutionResult> {
    const ref = gpuRefOf(decision);
    if (!ref) return fail(new NodewardenError('REQUEST_INVALID', `${decision.action} needs a Device target with a node, got ${decision.target.kind}`), decision.action);
    try {
      return decision.action === 'taint' ? await this.taintDevice(decision) : await this.untaintDevice(ref, decision);
    } catch (err) {
      return fail(err, `${decision.action} GPU ${ref.gpu} of ${ref.node}`);
    }
  }

  /** Creates the DeviceTaintRule of the decision's GPU (idempotent: an existing own rule is kept). */
  async taintDevice(decision: Decision): Promise<ExecutionResult> {
    const ref = gpuRefOf(decision);
    const what = `taint GPU ${ref?.gpu ?? '?'} of ${ref?.node ?? '?'}`;
    const support = await this.o.discovery.support();
    if (support.apiVersion === null) return fail(new NodewardenError('UNAVAILABLE', 'DeviceTaintRule is not served by this cluster', { retriable: false }), what);
    const apiVersion = support.apiVersion;
    const dry = this.o.dryRun === true;
    let effect: DeviceTaintEffect = dry ? 'None' : 'NoSchedule';
    let serverDryRun = dry && support.effectNone === false;
    if (serverDryRun) effect = 'NoSchedule';
    const build = (e: DeviceTaintEffect): WireDeviceTaintRule | null => buildDeviceTaintRule(decision, apiVersion, e, this.o.config, this.o.clock.now());
    const rule = build(effect);
    if (!rule) return fail(new NodewardenError('REQUEST_INVALID', `GPU id ${ref?.gpu ?? '?'} cannot be selected (no UUID, and no PCI attribute configured)`, { retriable: false }), what);
    const name = rule.metadata?.name ?? '';
    try {
      try {
        await this.o.api.create(apiVersion, rule, { dryRun: serverDryRun });
        if (dry && !serverDryRun) this.o.discovery.noteEffectNone(apiVersion, true);
      } catch (err) {
        if (!(dry && !serverDryRun && rejectsEffect(err))) throw err;
        // Kubernetes before 1.35 knows no effect None: validate the real rule by a server-side dry run instead
        this.o.discovery.noteEffectNone(apiVersion, false);
        serverDryRun = true;
        effect = 'NoSchedule';
        await this.o.api.create(apiVersion, build('NoSchedule') ?? rule, { dryRun: true });
      }
    } catch (err) {
      if (isCode(err, 'CONFLICT')) {
        const existing = await this.o.api.get(apiVersion, name);
        if (!isOwnDeviceTaintRule(existing))
          return { ok: false, detail: `DeviceTaintRule ${name} exists and is not nodewarden's; left as is`, error: new NodewardenError('FORBIDDEN', `DeviceTaintRule ${name} is not nodewarden's`, { retriable: false }) };
        this.log.info({ rule: name, decision: decision.id }, 'GPU already tainted by nodewarden');
        return { ok: true, detail: `GPU already tainted (DeviceTaintRule ${name}, effect ${existing.spec?.taint?.effect ?? '?'})`, ...(dry ? { dryRun: true } : {}) };
      }
      if (isCode(err, 'NOT_FOUND')) this.o.discovery.invalidate();
      throw err;
    }
    const detail = serverDryRun
      ? `dry-run: DeviceTaintRule ${name} (${apiVersion}) validated by the API server, not stored (this server has no effect None)`
      : `DeviceTaintRule ${name} (${apiVersion}) created, effect ${effect}`;
    this.log.info({ rule: name, node: ref?.node, gpu: ref?.gpu, effect, serverDryRun, decision: decision.id }, 'GPU tainted');
    return { ok: true, detail, ...(dry ? { dryRun: true } : {}) };
  }

  /**
   * Whose DeviceTaintRule the GPU is under (the repair ladder's check for a
   * person's removal or take-over): `own`, `other`, `none`; null when the API
   * is not served or cannot be read.
   */
  async owner(node: string, gpu: string): Promise<'own' | 'other' | 'none' | null> {
    const apiVersion = await this.o.discovery.apiVersion();
    if (apiVersion === null) return null;
    try {
      return isOwnDeviceTaintRule(await this.o.api.get(apiVersion, deviceTaintRuleName({ node, gpu }))) ? 'own' : 'other';
    } catch (err) {
      if (isCode(err, 'NOT_FOUND')) return 'none';
      this.log.warn({ node, gpu, err: errorMessage(err) }, 'DeviceTaintRule could not be read');
      return null;
    }
  }

  /**
   * The undo of {@link taintDevice}: deletes the GPU's DeviceTaintRule if
   * nodewarden made it (a person's rule is never touched); absent = done.
   * In dry-run only an effect-`None` rule is really deleted.
   */
  async untaintDevice(ref: GpuRef, decision?: Decision): Promise<ExecutionResult> {
    const what = `untaint GPU ${ref.gpu} of ${ref.node}`;
    const apiVersion = await this.o.discovery.apiVersion();
    if (apiVersion === null) return { ok: true, detail: 'DeviceTaintRule is not served: nothing to untaint' };
    const name = deviceTaintRuleName(ref);
    let existing: WireDeviceTaintRule;
    try {
      existing = await this.o.api.get(apiVersion, name);
    } catch (err) {
      if (isCode(err, 'NOT_FOUND')) return { ok: true, detail: `no DeviceTaintRule ${name}: GPU not tainted` };
      return fail(err, what);
    }
    if (!isOwnDeviceTaintRule(existing))
      return { ok: false, detail: `DeviceTaintRule ${name} is not nodewarden's; left as is`, error: new NodewardenError('FORBIDDEN', `DeviceTaintRule ${name} is not nodewarden's`, { retriable: false }) };
    const dryRun = this.o.dryRun === true && existing.spec?.taint?.effect !== 'None';
    const uid = existing.metadata?.uid;
    try {
      await this.o.api.delete(apiVersion, name, { ...(uid ? { uid } : {}), dryRun });
    } catch (err) {
      if (!isCode(err, 'NOT_FOUND')) return fail(err, what);
    }
    this.log.info({ rule: name, node: ref.node, gpu: ref.gpu, dryRun, decision: decision?.id }, 'GPU untainted');
    return { ok: true, detail: `DeviceTaintRule ${name} ${dryRun ? 'would be deleted (dry-run)' : 'deleted'}`, ...(this.o.dryRun ? { dryRun: true } : {}) };
  }
}

export function createDeviceTaintExecutor(o: DeviceTaintExecutorOptions): DeviceTaintExecutor {
  return new DeviceTaintExecutor(o);
}
