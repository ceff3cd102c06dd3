/**
 * Runtime rule toggles (enable/disable with reason and TTL). The engine asks
 * on its hot path, so `isEnabled` is synchronous: Redis-backed adapters keep a
 * local cache refreshed by pub/sub and a ≤1 s poll.
 */
export interface RuleToggle {
  rule: string;
  enabled: boolean;
  reason: string;
  by: string;
  /** ms since epoch when set. */
  at: number;
  /** ms since epoch after which the toggle no longer applies; null = until changed. */
  expiresAt: number | null;
}

export interface RuleToggles {
  /** The rule's effective state at `now`: an unexpired toggle wins over the file's `enabled`. */
  isEnabled(rule: string, fileEnabled: boolean, now: number): boolean;
  /** Unexpired toggles. */
  list(now: number): RuleToggle[];
  set(toggle: RuleToggle): Promise<void>;
  clear(rule: string): Promise<void>;
}

/** No toggles at all: every rule as its file says. */
export const fileOnlyToggles: RuleToggles = {
  isEnabled: (_rule, fileEnabled) => fileEnabled,
  list: () => [],
  set: () => Promise.reject(new Error('toggles are read-only here')),
  clear: () => Promise.reject(new Error('toggles are read-only here')),
};

/** A toggle store that holds resources (connections, timers). */
export interface ClosableRuleToggles extends RuleToggles {
  /** Loads the current toggles and starts following changes. Idempotent. */
  start(): Promise<void>;
  /**
   * Drops the toggles expired by `now` from the store (the expire-toggles job;
   * reads already ignore them). Returns how many went. Atomic against a toggle
   * re-set meanwhile.
   */
  dropExpired(now: number): Promise<number>;
  /** Stops timers and subscriptions. Idempotent. */
  close(): Promise<void>;
}
