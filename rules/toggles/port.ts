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
  set: async () => {
    throw new Error('toggles are read-only here');
  },
  clear: async () => {
    throw new Error('toggles are read-only here');
  },
};
