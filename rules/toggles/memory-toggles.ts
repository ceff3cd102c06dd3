/**
 * In-process rule toggles (embedded demo, replay, unit tests). Expiry is
 * judged on read against the injected clock, so an expired toggle vanishes
 * without a timer.
 */
import type { Clock } from '../../core/clock.js';
import type { ClosableRuleToggles, RuleToggle } from './port.js';

export class MemoryRuleToggles implements ClosableRuleToggles {
  private readonly toggles = new Map<string, RuleToggle>();
  constructor(private readonly clock: Clock) {}

  isEnabled(rule: string, fileEnabled: boolean, now: number): boolean {
    const t = this.toggles.get(rule);
    if (t === undefined) return fileEnabled;
    if (isExpired(t, now)) {
      this.toggles.delete(rule);
      return fileEnabled;
    }
    return t.enabled;
  }

  list(now: number): RuleToggle[] {
    const out: RuleToggle[] = [];
    for (const [rule, t] of this.toggles) {
      if (isExpired(t, now)) this.toggles.delete(rule);
      else out.push({ ...t });
    }
    return out.sort((a, b) => a.rule.localeCompare(b.rule));
  }

  set(toggle: RuleToggle): Promise<void> {
    if (isExpired(toggle, this.clock.now())) this.toggles.delete(toggle.rule);
    else this.toggles.set(toggle.rule, { ...toggle });
    return Promise.resolve();
  }

  clear(rule: string): Promise<void> {
    this.toggles.delete(rule);
    return Promise.resolve();
  }

  dropExpired(now: number): Promise<number> {
    let n = 0;
    for (const [rule, t] of this.toggles) if (isExpired(t, now) && this.toggles.delete(rule)) n++;
    return Promise.resolve(n);
  }

  async start(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A toggle stops applying at `expiresAt` exactly. */
export function isExpired(t: RuleToggle, now: number): boolean {
  return t.expiresAt !== null && t.expiresAt <= now;
}
